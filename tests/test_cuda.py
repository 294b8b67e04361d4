"""The GPU path: a CUDA run trains, records, and reads the same gradients as the CPU reference.

The CUDA tests skip cleanly on a machine without a GPU. The GPU's own read path (the log-depth
scan it uses instead of a loop over time) is also checked here on the CPU, so it is covered
on every machine.
"""
import functools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnn_core import engines
from rnn_core.config import make_config
from rnn_core.engines import linear_scan, run_fused, run_unrolled
from rnn_core.layers import RecurrentLayer
from rnn_core.model import build_model
from rnn_core.tasks import make_batch, spec
from rnn_core.trainer import Trainer, task_loss

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def _loop_scan(decay, inp, reverse):
    # the recurrence written out plainly, in float64: the oracle for both scans
    d, u = decay.double(), inp.double()
    s = torch.zeros_like(u)
    order = range(len(u) - 1, -1, -1) if reverse else range(len(u))
    prev = None
    for t in order:
        s[t] = u[t] if prev is None else u[t] + (d[t + 1] if reverse else d[t]) * s[prev]
        prev = t
    return s


@pytest.mark.parametrize("T", [1, 2, 3, 8, 37, 200])
@pytest.mark.parametrize("reverse", [False, True])
def test_both_scans_solve_the_recurrence(T, reverse):
    gen = torch.Generator().manual_seed(T)
    decay, inp = torch.rand(T, 3, 5, generator=gen), torch.randn(T, 3, 5, generator=gen)
    want = _loop_scan(decay, inp, reverse)
    for parallel in (False, True):
        got = linear_scan(decay, inp.clone(), reverse, parallel=parallel)
        torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gpu_read_path_on_cpu_matches_unrolled(cell, monkeypatch):
    """Force the fused read onto the scan a GPU uses and hold it to the unrolled reference."""
    monkeypatch.setattr(engines, "linear_scan", functools.partial(linear_scan, parallel=True))
    torch.manual_seed(3)
    layer = RecurrentLayer(cell, 3, 8)
    x = torch.randn(60, 4, 3)
    reads = []
    for run in (run_fused, run_unrolled):
        layer.zero_grad()
        out, trace = run(layer, x, True)
        (out[-1] ** 2).sum().backward()
        reads.append(trace.read())
    fused, unrolled = reads
    np.testing.assert_allclose(fused.grad_h, unrolled.grad_h, rtol=1e-4)
    if cell == "lstm":
        np.testing.assert_allclose(fused.grad_c, unrolled.grad_c, rtol=1e-4)
    np.testing.assert_allclose(fused.gate_mean, unrolled.gate_mean, atol=1e-5)


def test_bench_speed_runs_on_cpu(capsys):
    """The benchmark's table comes out (a smoke run: one rep, no timing asserted)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_speed

    bench_speed.main(["--cells", "gru", "--T", "12", "--reps", "1", "--warmup", "0"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| gru | 12 |")]
    assert len(rows) == 1 and len(rows[0].split("|")) == 11


# --- on a GPU -------------------------------------------------------------------


def _first_record(cell: str, device: str, **kw) -> tuple[Trainer, dict]:
    cfg = make_config(cell=cell, seq_len=80, hidden_size=32, steps=4, device=device, seed=11, **kw)
    tr = Trainer(cfg)
    first = tr.step()
    tr.run()
    return tr, first.arrays


@needs_cuda
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_cuda_run_trains_records_and_matches_cpu(cell):
    gpu, g = _first_record(cell, "cuda")
    cpu, c = _first_record(cell, "cpu")
    assert gpu.device.type == "cuda" and gpu.engine == "fused"
    assert gpu.status == "finished" and gpu.step_index == 4
    assert all(np.isfinite(r["loss"]) for r in gpu.recorder.rows)
    assert gpu.recorder.stacked()["timestep_grads"].shape == (4, 1, 80)
    assert g.keys() == c.keys()
    # same seed, same weights (built on the CPU), same batch: float32 (cuDNN may use TF32) tolerance
    assert np.all(c["timestep_grads"] > 0)
    np.testing.assert_allclose(g["timestep_grads"], c["timestep_grads"], rtol=2e-3)
    if cell == "lstm":
        np.testing.assert_allclose(g["cell_grads"], c["cell_grads"], rtol=2e-3)
    if cell != "rnn":
        np.testing.assert_allclose(g["gate_mean"], c["gate_mean"], atol=1e-3)
    np.testing.assert_allclose(g["spectral_radius"], c["spectral_radius"], rtol=1e-5)


@needs_cuda
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_cuda_fused_matches_cuda_unrolled_two_layers_bidirectional(cell):
    cfg = make_config(cell=cell, layers=2, bidirectional=True, hidden_size=16, seq_len=40)
    sp = spec(cfg)
    x, y = make_batch(cfg, torch.Generator().manual_seed(5), 8)
    x, y = x.cuda(), y.cuda()
    reads = {}
    for engine in ("fused", "unrolled"):
        model = build_model(cfg, sp).cuda().train()
        res = model(x, engine, record=True)
        task_loss(sp, res.pred, y).backward()
        reads[engine] = [t.read() for t in res.traces]
    for a, b in zip(reads["fused"], reads["unrolled"]):
        np.testing.assert_allclose(a.grad_h, b.grad_h, rtol=2e-3)


@needs_cuda
def test_bench_speed_runs_on_cuda(capsys):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bench_speed

    bench_speed.main(["--device", "cuda", "--cells", "lstm", "--T", "20", "--reps", "1", "--warmup", "0"])
    assert any(line.startswith("| lstm | 20 |") for line in capsys.readouterr().out.splitlines())


def test_threaded_spectra_equal_synchronous(monkeypatch):
    """On a GPU the spectra are solved on a worker thread during the step: same numbers, same step."""
    from rnn_core import trainer as trainer_mod

    runs = {}
    for threaded in (False, True):
        monkeypatch.setitem(trainer_mod.SPECTRA_IN_THREAD, "cpu", threaded)
        tr = Trainer(make_config(cell="gru", layers=2, seq_len=20, hidden_size=8, steps=3, record_every=1))
        tr.run()
        runs[threaded] = tr.recorder.stacked()
    assert runs[True]["spectral_radius"].shape == (3, 2, 3)
    for key in ("spectral_radius", "sigma_max", "timestep_grads"):
        np.testing.assert_array_equal(runs[True][key], runs[False][key])
    # the weights changed between steps, so each step's spectrum is its own (not a stale copy)
    assert not np.array_equal(runs[True]["sigma_max"][0], runs[True]["sigma_max"][2])


def test_cpu_spectra_go_to_a_thread_only_when_a_core_is_spare(monkeypatch):
    from rnn_core import trainer as trainer_mod

    cpu = torch.device("cpu")
    monkeypatch.setattr(trainer_mod, "CORES", 4)
    monkeypatch.setattr(trainer_mod.torch, "get_num_threads", lambda: 1)
    assert trainer_mod._spectra_in_thread(cpu)  # three idle cores: solve there
    monkeypatch.setattr(trainer_mod.torch, "get_num_threads", lambda: 4)
    assert not trainer_mod._spectra_in_thread(cpu)  # the step uses every core: a worker would only compete
    assert trainer_mod._spectra_in_thread(torch.device("cuda"))  # the host thread mostly waits on kernels
