"""The training loop: one straight `step()`, with minGPT-style callbacks so a UI can stream
results without rnn_core knowing about it.

    trainer = Trainer(make_config(cell="lstm"), out_dir="runs/demo")
    trainer.add_callback("on_step_end", lambda tr, rec: print(rec.step, rec.loss))
    trainer.run()

Each step: draw a batch, forward (recording when step % record_every == 0), backward,
read the exact per-timestep gradients with the parameters as they were before the update,
clip, update. NaN or Inf stops the run cleanly as `diverged`, keeping what was recorded.
"""
from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import store
from .config import ConfigError, RunConfig
from .devices import resolve_device
from .diagnostics import group_norms, parameter_groups, recurrent_spectra, spectra_async
from .engines import fused_supported
from .model import ATTN_KEEP_QUERIES, ATTN_SAMPLES, build_model
from .optim import build_optimizer, clip_gradients, lr_factor, set_lr
from .recorder import Recorder, StepRecord
from .tasks import TaskSpec, baseline_loss, make_batch, spec as task_spec
from .warmstart import apply_freeze, load_warm_start

VAL_BATCH = 256  # held-out sequences for val_loss: fixed for the whole run
FLUSH_SECONDS = 2.0  # write the run store at most this often while training
# Where the spectra are solved on a worker thread during the step. "spare": on CPU only when the
# step leaves a core idle (fewer intra-op threads than cores, as in the app); otherwise the worker
# would compete with the step's own threads for the same cores.
SPECTRA_IN_THREAD = {"cpu": "spare", "cuda": True, "mps": True}


CORES = os.cpu_count() or 1


def _spectra_in_thread(device: torch.device) -> bool:
    mode = SPECTRA_IN_THREAD.get(device.type, False)
    if mode == "spare":
        return torch.get_num_threads() < CORES
    return bool(mode)


def resolve_engine(cfg: RunConfig) -> str:
    if cfg.engine == "auto":
        return "fused" if fused_supported(cfg.cell, cfg.activation) else "unrolled"
    return cfg.engine


def task_loss(spec: TaskSpec, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if spec.loss == "mse":
        return F.mse_loss(pred, y)
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), y.reshape(-1))


class Trainer:
    def __init__(self, cfg: RunConfig, out_dir: str | Path | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.engine = resolve_engine(cfg)
        self.spec = task_spec(cfg)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)  # denormals made CPU steps 2-8× slower; values < 1e-38 read as 0
        self.model = build_model(cfg, self.spec)
        if cfg.warm_start:
            load_warm_start(self.model, cfg.warm_start)
        self.trainable = apply_freeze(self.model, cfg.freeze)
        self.model.to(self.device)
        self.opt = build_optimizer(cfg, self.trainable)
        self.groups = parameter_groups(self.model)
        # The groups cover every parameter, so the global norm is their root sum of squares: one
        # foreach norm and one host sync per step, not two.
        grouped = {id(p) for params in self.groups.values() for p in params}
        self._norm_from_groups = all(id(p) in grouped for p in self.trainable)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)  # training data stream and input noise
        # Dropout draws from the global generator: each trainer keeps its own state of it and swaps it in
        # for its steps, so two runs in one process (two app sessions) never disturb each other.
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(cfg.seed)
            self.rng_state = self._get_rng()
        val_gen = torch.Generator().manual_seed(cfg.seed + 2_000_003)
        xv, yv = make_batch(cfg, val_gen, VAL_BATCH, split="val")
        self.val_baseline = baseline_loss(cfg, xv, yv)  # the bar on this batch (see tasks.baseline_loss)
        self.val_batch = (xv.to(self.device), yv.to(self.device))
        self.recorder = Recorder(cfg.seq_len)
        self.step_index = 0  # steps done
        self.status, self.reason = "running", ""
        self.diverged_at: int | None = None
        self.best_val, self.bad_evals = math.inf, 0
        self.last_val: float | None = None
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self._stop_requested = False
        # config.json and status.json are written below; the first full save waits FLUSH_SECONDS,
        # so a UI's first chart never waits on disk
        self._last_flush = time.perf_counter()
        self._save_seconds = 0.0  # how long the last save took
        if self.out_dir is not None:
            store.atomic_write_json(self.out_dir / "config.json", cfg.model_dump())
            self._write_status()

    # --- callbacks and control --------------------------------------------------
    def add_callback(self, event: str, fn: Callable) -> None:
        """Events: on_step_end(trainer, record), on_run_end(trainer)."""
        self.callbacks[event].append(fn)

    def _fire(self, event: str, *args) -> None:
        for fn in self.callbacks.get(event, []):
            fn(self, *args)

    def request_stop(self) -> None:
        """Stop after the current step (safe to call from a callback or another thread)."""
        self._stop_requested = True

    @property
    def done(self) -> bool:
        return self.status != "running"

    # --- the step ---------------------------------------------------------------
    def seq_len_at(self, step: int) -> int:
        cfg = self.cfg
        if not cfg.curriculum or cfg.steps <= 1:
            return cfg.seq_len
        grow = step / (cfg.steps - 1)  # linear growth from curriculum_start to seq_len over the run
        return int(round(cfg.curriculum_start + grow * (cfg.seq_len - cfg.curriculum_start)))

    def _rng_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    def _get_rng(self) -> dict:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _set_rng(self, state: dict) -> None:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def step(self) -> StepRecord:
        if self.done:
            raise RuntimeError(f"the run is {self.status}; nothing to step")
        with torch.random.fork_rng(devices=self._rng_devices()):
            self._set_rng(self.rng_state)
            rec = self._step()
            self.rng_state = self._get_rng()
        self._fire("on_step_end", rec)
        if self._stop_requested and not self.done:
            self.status, self.reason = "stopped", f"stopped by request after step {rec.step}"
        # Saving rewrites whole files (atomically), so its cost grows with the run: space saves out so
        # they never take more than ~5% of the time.
        wait = max(FLUSH_SECONDS, 20 * self._save_seconds)
        if self.out_dir is not None and (self.done or time.perf_counter() - self._last_flush > wait):
            self.save()
        if self.done:
            self._fire("on_run_end")
        return rec

    def _step(self) -> StepRecord:
        cfg, s = self.cfg, self.step_index
        t0 = time.perf_counter()
        T = self.seq_len_at(s)
        x, y = make_batch(cfg, self.gen, cfg.batch_size, T)
        if cfg.input_noise > 0 and not self.spec.tokens:
            x = x + cfg.input_noise * torch.randn(x.shape, generator=self.gen)
        x, y = x.to(self.device), y.to(self.device)
        record = s % cfg.record_every == 0
        # spectra of the weights before this update, solved while the forward/backward runs (GPU)
        spectra = spectra_async(self.model) if record and _spectra_in_thread(self.device) else None
        lr = cfg.lr * lr_factor(cfg, s)
        set_lr(self.opt, lr)

        self.model.train()
        res = self.model(x, self.engine, record)
        loss = task_loss(self.spec, res.pred, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        loss_v = float(loss.detach())
        norms = group_norms(self.groups)  # before clipping: what the loss asked for
        pre = math.sqrt(math.fsum(v * v for v in norms.values())) if self._norm_from_groups else None
        pre, post, clipped = clip_gradients(cfg, self.trainable, pre)
        arrays = self._read_diagnostics(res, s, T, spectra) if record else None  # before opt.step()
        del res  # the graph and the retained gradients go now, not at the next step
        diverged = not (math.isfinite(loss_v) and math.isfinite(pre))
        if not diverged:
            self.opt.step()

        val = None
        last = s == cfg.steps - 1
        if not diverged and (s % cfg.eval_every == 0 or last):
            val = self.evaluate()
        rec = StepRecord(s, loss_v, val, pre, post, clipped, lr, 0.0, T, norms, arrays)
        self.step_index = s + 1
        self._update_status(rec, diverged, last)
        rec.step_time_ms = (time.perf_counter() - t0) * 1e3  # the whole step, recording and evaluation included
        self.recorder.add(rec)
        return rec

    def _read_diagnostics(self, res, step: int, T: int, spectra=None) -> dict[str, np.ndarray]:
        readouts = [tr.read() for tr in res.traces]  # layer-major, direction-minor
        arrays = {
            "recorded_steps": np.asarray(step, dtype=np.int64),
            "timestep_grads": np.stack([r.grad_h for r in readouts]),  # (L·D, T)
            "hidden_saturation": np.stack([r.hidden_saturation for r in readouts]),  # (L·D, T)
        }
        if readouts[0].grad_c is not None:
            arrays["cell_grads"] = np.stack([r.grad_c for r in readouts])  # (L·D, T)
        if readouts[0].gate_mean is not None:
            arrays["gate_mean"] = np.stack([r.gate_mean for r in readouts]).astype(np.float32)  # (L·D, G, T)
            arrays["gate_saturation"] = np.stack([r.gate_saturation for r in readouts]).astype(np.float32)
        radius, sigma = spectra.result() if spectra is not None else recurrent_spectra(self.model)
        arrays["spectral_radius"], arrays["sigma_max"] = radius, sigma  # (L·D, G)
        if res.attention is not None:
            w = res.attention.float().cpu().numpy()  # (B, Q, T)
            Q = 1 if self.spec.read == "last" else min(ATTN_KEEP_QUERIES, self.cfg.seq_len)
            mean = np.full((Q, T), np.nan, np.float32)
            samples = np.full((ATTN_SAMPLES, Q, T), np.nan, np.float32)
            mean[Q - w.shape[1]:] = w.mean(0)
            samples[:min(ATTN_SAMPLES, w.shape[0]), Q - w.shape[1]:] = w[:ATTN_SAMPLES]
            arrays["attention_mean"], arrays["attention_samples"] = mean, samples
        return arrays

    @torch.no_grad()
    def evaluate(self) -> float:
        self.model.eval()
        xv, yv = self.val_batch
        val = float(task_loss(self.spec, self.model(xv, self.engine, record=False).pred, yv))
        self.model.train()
        return val

    def _update_status(self, rec: StepRecord, diverged: bool, last: bool) -> None:
        if diverged:
            self.status, self.diverged_at = "diverged", rec.step
            what = "loss" if not math.isfinite(rec.loss) else "gradient norm"
            self.reason = f"{what} became {rec.loss if what == 'loss' else rec.grad_norm_pre_clip} at step {rec.step}"
            return
        if rec.val_loss is not None:
            self.last_val = rec.val_loss
            if rec.val_loss < self.best_val:
                self.best_val, self.bad_evals = rec.val_loss, 0
            else:
                self.bad_evals += 1
        patience = self.cfg.early_stopping_patience
        if patience and self.bad_evals >= patience:
            self.status = "stopped"
            self.reason = (f"early stopping at step {rec.step}: val_loss did not improve on {self.best_val:.6g} "
                           f"in {patience} evaluations")
        elif last:
            self.status, self.reason = "finished", f"all {self.cfg.steps} steps done"

    # --- whole runs ---------------------------------------------------------------
    def run(self, max_steps: int | None = None) -> str:
        """Step until finished, stopped, diverged, or `max_steps` more steps are done."""
        done = 0
        while not self.done and (max_steps is None or done < max_steps):
            self.step()
            done += 1
        return self.status

    def stop(self) -> None:
        """Stop now (between steps), save, and leave the run resumable."""
        if not self.done:
            self.status, self.reason = "stopped", f"stopped by request after step {self.step_index - 1}"
            if self.out_dir is not None:
                self.save()
            self._fire("on_run_end")

    def summary(self) -> dict:
        final = self.last_val if self.last_val is not None else self.recorder.last("loss")
        return {
            "status": self.status, "reason": self.reason, "steps_done": self.step_index,
            "diverged_at": self.diverged_at, "final_val_loss": final, "baseline": self.spec.baseline,
            "baseline_name": self.spec.baseline_name,
            "val_baseline": self.val_baseline,
            "beat_baseline": bool(final is not None and math.isfinite(final) and final < self.val_baseline),
            "engine": self.engine, "device": str(self.device),
            # charlm: cross-entropy in nats / ln 2 = bits per character
            **({"final_val_bits_per_char": final / math.log(2) if final is not None else None,
                "baseline_bits_per_char": self.spec.baseline / math.log(2)} if self.cfg.task == "charlm" else {}),
        }

    # --- persistence --------------------------------------------------------------
    def _write_status(self) -> None:
        store.atomic_write_json(self.out_dir / "status.json", self.summary())

    def save(self) -> None:
        """Write metrics, arrays, weights, a resumable checkpoint and the status, each atomically."""
        if self.out_dir is None:
            return
        from .checkpoint import save_checkpoint

        t0 = time.perf_counter()
        self.recorder.write(self.out_dir)
        store.atomic_save_safetensors(self.out_dir / "model.safetensors", self.model.state_dict())
        save_checkpoint(self)
        self._write_status()
        self._last_flush = time.perf_counter()
        self._save_seconds = self._last_flush - t0

    @classmethod
    def resume(cls, out_dir: str | Path, steps: int | None = None) -> "Trainer":
        """Continue a stopped (or killed) run from its last checkpoint. `steps` may raise the step budget."""
        from .checkpoint import load_checkpoint
        from .config import make_config

        out_dir = Path(out_dir)
        data = store.load_run(out_dir)
        values = dict(data.config)
        if steps is not None:
            values["steps"] = steps
        trainer = cls(make_config(values), out_dir=None)
        trainer.out_dir = out_dir
        load_checkpoint(trainer)
        if trainer.step_index >= trainer.cfg.steps:
            raise ConfigError(f"the run at {out_dir} already did {trainer.step_index} of steps={trainer.cfg.steps}: "
                              "pass a larger steps to continue it")
        trainer.recorder.load(data.metrics, data.arrays, trainer.step_index, trainer.cfg.record_every)
        trainer.status, trainer.reason = "running", f"resumed at step {trainer.step_index}"
        store.atomic_write_json(out_dir / "config.json", trainer.cfg.model_dump())
        trainer._write_status()
        return trainer
