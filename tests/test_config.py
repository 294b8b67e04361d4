import pytest

from rnn_core.config import ConfigError, RunConfig, make_config, parse_assignments


def test_every_field_has_a_default_and_a_description():
    for name, field in RunConfig.model_fields.items():
        assert field.description, name
    cfg = make_config()
    assert cfg.task == "adding" and cfg.seq_len == 50


@pytest.mark.parametrize("values, words", [
    ({"seq_len": 1}, ["seq_len=1", "2..2000"]),
    ({"seq_len": 5000}, ["seq_len=5000", "2..2000"]),
    ({"hidden_size": 0}, ["hidden_size=0", "1..512"]),
    ({"layers": 5}, ["layers=5", "1..4"]),
    ({"batch_size": 2000}, ["batch_size=2000", "1..1024"]),
    ({"steps": 0}, ["steps=0", "1..100000"]),
    ({"cell": "transformer"}, ["cell=transformer", "rnn, lstm, gru"]),
    ({"optimizer": "lbfgs"}, ["optimizer=lbfgs", "sgd"]),
    ({"hidden": 3}, ["unknown key 'hidden'", "hidden_size"]),
    ({"lr": "fast"}, ["lr=fast"]),
    ({"task": "copy", "seq_len": 15}, ["seq_len=15", "task=copy", "21..2000"]),
    ({"task": "digits", "digits_mode": "row", "seq_len": 64}, ["must be 8"]),
    ({"engine": "fused", "activation": "sigmoid"}, ["engine=fused", "sigmoid"]),
    ({"residual": True}, ["residual", "layers"]),
    ({"freeze": "input"}, ["freeze=input", "warm_start"]),
    ({"warm_start": "../etc"}, ["not allowed"]),
    ({"task": "charlm", "bidirectional": True}, ["bidirectional"]),
    ({"task": "copy", "attention": "additive", "seq_len": 500}, ["attention=additive", "2..200"]),
])
def test_bad_values_get_one_clear_line(values, words):
    with pytest.raises(ConfigError) as err:
        make_config(values)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_strings_are_coerced_like_a_cli_or_url():
    cfg = make_config({"seq_len": "120", "bidirectional": "true", "lr": "3e-4", "cell": "gru"})
    assert (cfg.seq_len, cfg.bidirectional, cfg.lr, cfg.cell) == (120, True, 3e-4, "gru")


def test_parse_assignments():
    assert parse_assignments(["cell=lstm", "seq_len = 50"]) == {"cell": "lstm", "seq_len": "50"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["cell"])


def test_config_is_frozen_and_round_trips():
    cfg = make_config(cell="lstm", clip=1.0)
    with pytest.raises(Exception):
        cfg.cell = "rnn"
    assert make_config(cfg.model_dump()) == cfg


def test_importing_the_config_does_not_import_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, rnn_core, rnn_core.config; rnn_core.config.make_config(task='digits'); "
            "bad = [m for m in ('torch', 'numpy', 'pandas') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], check=True, timeout=60)


def test_a_task_that_fixes_its_length_takes_it_when_seq_len_is_left_out():
    assert make_config(task="digits").seq_len == 64
    assert make_config({"task": "digits", "digits_mode": "row"}).seq_len == 8
    assert make_config(task="copy").seq_len == 50  # free length: the default
    with pytest.raises(ConfigError, match="seq_len=50 does not fit task=digits"):
        make_config(task="digits", seq_len=50)  # a given wrong length is still an error


def test_old_name_horizon_still_reads():
    assert make_config({"task": "sine", "horizon": "3"}).forecast_steps == 3  # an old link or saved config.json
    assert "horizon" not in make_config(task="sine", horizon=3).model_dump()
    with pytest.raises(ConfigError, match="horizon is the old name of forecast_steps"):
        make_config(task="sine", horizon=3, forecast_steps=4)


@pytest.mark.parametrize("values, allowed", [
    ({"lr": 0}, "allowed: float > 0 and <= 10"),
    ({"init_gain": -1}, "allowed: float in 0..10"),
    ({"warm_start": "x" * 101}, "allowed: str at most 100 characters"),
])
def test_allowed_ranges_are_described_truthfully(values, allowed):
    with pytest.raises(ConfigError) as err:
        make_config(values)
    assert allowed in str(err.value)


@pytest.mark.parametrize("values", [
    {"cell": "x" * 10_000}, {"y" * 10_000: 1}, {"warm_start": "../" + "z" * 10_000}, {"lr": "9" * 10_000},
    {"task": "copy", "seq_len": 10, "warm_start": "../" + "z" * 90},
])
def test_echoed_values_are_cut(values):
    with pytest.raises(ConfigError) as err:
        make_config(values)
    msg = str(err.value)
    assert "…" in msg and not any(c * 41 in msg for c in "xyz9"), msg  # at most 40 characters of a value
    with pytest.raises(ConfigError) as err:
        parse_assignments(["q" * 10_000])
    assert len(str(err.value)) < 120
