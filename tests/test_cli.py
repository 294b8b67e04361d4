import json
import subprocess
import sys
from pathlib import Path

import pytest

from rnn_core.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_cli_end_to_end_in_a_subprocess(tmp_path):
    out = tmp_path / "x"
    proc = subprocess.run([sys.executable, "-m", "rnn_core", "train", "--set", "cell=lstm", "--set", "task=adding",
                           "--set", "seq_len=50", "--set", "steps=20", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert "finished" in last and "baseline 0.1667" in last and str(out) in last
    for f in ["config.json", "metrics.csv", "timestep_grads.npy", "cell_grads.npy", "model.safetensors", "status.json"]:
        assert (out / f).is_file(), f
    assert json.loads((out / "config.json").read_text())["cell"] == "lstm"


@pytest.mark.parametrize("args, words", [
    (["--set", "cell=lstn"], ["cell=lstn", "rnn, lstm, gru"]),
    (["--set", "seq_len=0"], ["seq_len=0", "2..2000"]),
    (["--set", "colour=red"], ["unknown key 'colour'"]),
    (["--set", "cell"], ["KEY=VALUE"]),
])
def test_bad_values_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, args, words):
    out = tmp_path / "never"
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    for w in words:
        assert w in err
    assert not out.exists()


def test_refuses_to_overwrite_a_run_and_resumes_it(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--set", "steps=3", "--set", "seq_len=10", "--out", str(out), "--quiet"]) == 0
    assert main(["train", "--set", "steps=3", "--out", str(out), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["resume", str(out), "--steps", "5", "--quiet"]) == 0
    assert "5 steps" in capsys.readouterr().out


def test_keys_lists_every_field(capsys):
    from rnn_core.config import RunConfig

    assert main(["keys"]) == 0
    text = capsys.readouterr().out
    for name in RunConfig.model_fields:
        assert name in text


def test_digits_takes_its_own_length(tmp_path):
    out = tmp_path / "d"
    assert main(["train", "--set", "task=digits", "--set", "steps=2", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["seq_len"] == 64
    assert main(["train", "--set", "task=digits", "--set", "seq_len=50", "--out", str(tmp_path / "e"), "--quiet"]) == 2


@pytest.mark.parametrize("args", [
    ["train", "--set", "cell=" + "x" * 10_000, "--out", "never"],
    ["train", "--set", "warm_start=" + "y" * 10_000, "--out", "never"],
    ["train", "--set", "z" * 10_000, "--out", "never"],
    ["resume", "/nonexistent/" + "w" * 10_000],
])
def test_long_values_are_never_echoed_in_full(capsys, args):
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:") and len(err) < 400, err[:500]


def test_a_config_over_the_limits_is_refused_unless_asked(tmp_path, capsys):
    from rnn_core.cli import main

    huge = ["--set", "cell=lstm", "--set", "seq_len=2000", "--set", "hidden_size=512", "--set", "layers=4",
            "--set", "bidirectional=true"]
    assert main(["train", *huge, "--out", str(tmp_path / "big"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "memory" in err and "--no-limits" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "big").exists()
