"""The training loop: one straight `step()`, with minGPT-style callbacks so a UI can stream
results without rnn_core knowing about it.

    trainer = Trainer(make_config(cell="lstm"), out_dir="runs/demo")
    trainer.add_callback("on_step_end", lambda tr, rec: print(rec.step, rec.loss))
    trainer.run()

Each step: draw a batch, forward (recording when step % record_every == 0), backward,
read the exact per-timestep gradients with the parameters as they were before the update,
clip, update. NaN or Inf stops the run cleanly as `diverged`, keeping what was recorded.

The Trainer only loops. Saving is a callback (persist.RunWriter, attached when `out_dir` is
given), resuming builds a Trainer from a run directory (persist.resume), the summary is a
function of the trainer (summary.summarize), and `state()` / `load_state()` are all a
checkpoint needs. A stop requested from another thread aborts the step in progress between
two layer-directions, forward or backward, and leaves the trainer as it was before that step.
"""
from __future__ import annotations

import copy
import math
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .cells import GATES
from .config import RunConfig
from .devices import resolve_device
from .diagnostics import group_norms, parameter_groups, recurrent_spectra, spectra_async
from .engines import fused_supported
from .model import ATTN_KEEP_QUERIES, ATTN_SAMPLES, GLOBAL_RNG, build_model
from .optim import build_optimizer, clip_gradients, lr_factor, set_lr
from .records import pad_time
from .recorder import Recorder, StepRecord
from .summary import summarize
from .tasks import TaskSpec, make_batch, spec as task_spec
from .trainset import TrainSet
from .verdict import accuracy, baseline_losses, sequence_losses
from .warmstart import apply_freeze, load_warm_start

VAL_BATCH = 256  # held-out sequences for val_loss: fixed for the whole run
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


class _StopInStep(Exception):
    """Raised between two layer-directions when a stop was requested during a step; caught by step()."""


class Trainer:
    def __init__(self, cfg: RunConfig, out_dir: str | Path | None = None):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.engine = resolve_engine(cfg)
        self.spec = task_spec(cfg)
        if self.device.type == "cpu":
            torch.set_flush_denormal(True)  # denormals made CPU steps 2-8× slower; values < 1e-38 read as 0
        self.model = build_model(cfg, self.spec)
        if cfg.warm_start:
            load_warm_start(self.model, cfg.warm_start)
        self.trainable = apply_freeze(self.model, cfg.freeze)
        self.model.to(self.device)
        # batch norm's running statistics; to() made these tensors, which training updates in place
        self._buffers = list(self.model.named_buffers())
        self.opt = build_optimizer(cfg, self.trainable)
        self.groups = parameter_groups(self.model)
        # The groups cover every parameter, so the global norm is their root sum of squares: one
        # foreach norm and one host sync per step, not two.
        grouped = {id(p) for params in self.groups.values() for p in params}
        self._norm_from_groups = all(id(p) in grouped for p in self.trainable)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)  # training data stream and input noise
        # Dropout draws from the global generator: each trainer keeps its own state of it and swaps it in
        # for its steps, under GLOBAL_RNG, so two runs in one process (two app sessions, two threads of
        # the pool) never disturb each other. A run without dropout never draws from it in a step.
        self._draws_global_rng = cfg.dropout > 0
        with GLOBAL_RNG, torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(cfg.seed)
            self.rng_state = self._get_rng()
        val_gen = torch.Generator().manual_seed(cfg.seed + 2_000_003)
        xv, yv = make_batch(cfg, val_gen, VAL_BATCH, split="val")
        # (B,) loss of the input-blind predictor on each validation sequence: the verdict's bar
        self.val_baseline_losses = baseline_losses(cfg, self.spec, xv, yv)
        self.val_baseline = float(self.val_baseline_losses.mean())  # = tasks.baseline_loss on this batch
        self.val_batch = (xv.to(self.device), yv.to(self.device))
        # train_size > 0: a fixed set, rebuilt from the seed (a resumed run draws the same one), never
        # holding a validation sequence; its first 256 sequences are scored like the validation batch
        self.train_set = TrainSet.draw(cfg, self.spec, (xv, yv)) if cfg.train_size else None
        self.train_eval_batch = None
        if self.train_set is not None:
            xt, yt = self.train_set.head()
            self.train_eval_batch = (xt.to(self.device), yt.to(self.device))
        self.recorder = Recorder(cfg.seq_len)
        self.step_index = 0  # steps done
        self.status, self.reason = "running", ""
        self.diverged_at: int | None = None
        self.best_val, self.bad_evals = math.inf, 0
        self.last_val: float | None = None
        self.last_val_accuracy: float | None = None
        self.last_train_eval: float | None = None  # train_size > 0: the training set's loss at the last evaluation
        self.val_losses: np.ndarray | None = None  # (B,) the model's loss on each validation sequence, last evaluation
        self.callbacks: dict[str, list[Callable]] = defaultdict(list)
        self._stop_requested = False
        self._undo: tuple[dict, dict] | None = None  # weights and optimizer before this step's update (eval steps)
        self.writer = None
        if out_dir is not None:
            from .persist import RunWriter

            RunWriter(out_dir).attach(self)

    @property
    def out_dir(self) -> Path | None:
        return self.writer.out_dir if self.writer is not None else None

    # --- callbacks and control --------------------------------------------------
    def add_callback(self, event: str, fn: Callable) -> None:
        """Events: on_step_end(trainer, record), on_run_end(trainer)."""
        self.callbacks[event].append(fn)

    def _fire(self, event: str, *args) -> None:
        for fn in self.callbacks.get(event, []):
            fn(self, *args)

    def request_stop(self) -> None:
        """Stop as soon as possible: safe from a callback or another thread. A step in progress is
        abandoned at the next layer-direction of its forward or backward pass and undone."""
        self._stop_requested = True

    def _check_stop(self) -> None:
        if self._stop_requested:
            raise _StopInStep

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

    def step(self) -> StepRecord | None:
        """One training step. None when a stop request ended the run before or during it."""
        if self.done:
            raise RuntimeError(f"the run is {self.status}; nothing to step")
        if self._stop_requested:  # asked between steps (another thread)
            self._end_by_request(f"stopped by request after step {self.step_index - 1}")
            return None
        data_state = (self.gen.get_state(), self.train_set.state() if self.train_set is not None else None)
        buffers = {k: b.detach().clone() for k, b in self._buffers}  # batch norm's running stats
        try:
            if self._draws_global_rng:
                with GLOBAL_RNG, torch.random.fork_rng(devices=self._rng_devices()):
                    self._set_rng(self.rng_state)
                    rec = self._step()
                    self.rng_state = self._get_rng()  # only a finished step moves dropout's generator on
            else:
                rec = self._step()
        except _StopInStep:
            self._undo_step(data_state, buffers)
            self._end_by_request(f"stopped by request during step {self.step_index}")
            return None
        finally:
            self._undo = None
        self._fire("on_step_end", rec)
        if self._stop_requested and not self.done:
            self.status, self.reason = "stopped", f"stopped by request after step {rec.step}"
        if self.done:
            self._fire("on_run_end")
        return rec

    def _undo_step(self, data_state: tuple, buffers: dict) -> None:
        """Back to the state before the aborted step: data stream, weights, optimizer, buffers, no grads."""
        self.gen.set_state(data_state[0])
        if data_state[1] is not None:  # the epoch's position (and order, if the step began a new epoch)
            self.train_set.load_state(data_state[1])
        if self._undo is not None:  # the abort came in the evaluation, after the update
            self.model.load_state_dict(self._undo[0])
            self.opt.load_state_dict(self._undo[1])
        with torch.no_grad():
            for name, b in self.model.named_buffers():
                b.copy_(buffers[name])
        self.opt.zero_grad(set_to_none=True)
        self.model.train()

    def _end_by_request(self, reason: str) -> None:
        self.status, self.reason = "stopped", reason
        self._fire("on_run_end")

    def _step(self) -> StepRecord:
        cfg, s = self.cfg, self.step_index
        t0 = time.perf_counter()
        T = self.seq_len_at(s)
        if self.train_set is not None:  # the fixed set, reshuffled each epoch from the data stream
            x, y = self.train_set.batch(cfg.batch_size, self.gen)
        else:  # fresh sequences every step
            x, y = make_batch(cfg, self.gen, cfg.batch_size, T)
        if cfg.input_noise > 0 and not self.spec.tokens:
            x = x + cfg.input_noise * torch.randn(x.shape, generator=self.gen)
        x, y = x.to(self.device), y.to(self.device)
        record = s % cfg.record_every == 0
        # spectra of the weights before this update, solved while the forward/backward runs (GPU)
        spectra = spectra_async(self.model) if record and _spectra_in_thread(self.device) else None
        lr = cfg.lr * lr_factor(cfg, s)
        set_lr(self.opt, lr)

        if not self.model.training:  # train() walks every module: only after an evaluation
            self.model.train()
        res = self.model(x, self.engine, record, interrupt=self._check_stop)
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
        last = s == cfg.steps - 1
        eval_due = not diverged and (s % cfg.eval_every == 0 or last)
        if eval_due:  # a stop during the evaluation must be able to take the update back
            self._undo = ({k: v.detach().clone() for k, v in self.model.state_dict().items()},
                          copy.deepcopy(self.opt.state_dict()))
        if not diverged:
            self.opt.step()

        val, acc, per_seq = self.evaluate() if eval_due else (None, None, None)
        train_eval = self.evaluate_train() if eval_due and self.train_set is not None else None
        rec = StepRecord(s, loss_v, val, pre, post, clipped, lr, 0.0, T, norms, arrays, acc, train_eval)
        self.step_index = s + 1
        if per_seq is not None:
            self.val_losses, self.last_val_accuracy = per_seq, acc
        if train_eval is not None:
            self.last_train_eval = train_eval
        self._update_status(rec, diverged, last)
        rec.step_time_ms = (time.perf_counter() - t0) * 1e3  # the whole step, recording and evaluation included
        self.recorder.add(rec)
        return rec

    def gates_at(self, step: int) -> bool:
        """Whether recorded step `step` takes the gate statistics and ‖∂L/∂c_t‖ (every gates_every-th)."""
        return (step // self.cfg.record_every) % self.cfg.gates_every == 0

    def _read_diagnostics(self, res, step: int, T: int, spectra=None) -> dict[str, np.ndarray]:
        readouts = []
        gates = self.gates_at(step)
        for trace in res.traces:  # layer-major, direction-minor
            self._check_stop()  # a T=2000 LSTM layer takes a while to read
            readouts.append(trace.read(gates))
        LD = len(readouts)
        arrays = {
            "recorded_steps": np.asarray(step, dtype=np.int64),
            "timestep_grads": np.stack([r.grad_h for r in readouts]),  # (L·D, T)
            "hidden_saturation": np.stack([r.hidden_saturation for r in readouts]),  # (L·D, T)
        }
        # a step that skips them still has their rows, all NaN, so every array has a row per recorded step
        if self.cfg.cell == "lstm":
            arrays["cell_grads"] = np.stack([r.grad_c for r in readouts]) if gates else np.full((LD, T), np.nan)
        if self.cfg.cell != "rnn":
            if gates:
                arrays["gate_mean"] = np.stack([r.gate_mean for r in readouts]).astype(np.float32)  # (L·D, G, T)
                arrays["gate_saturation"] = np.stack([r.gate_saturation for r in readouts]).astype(np.float32)
            else:
                arrays["gate_mean"] = np.full((LD, len(GATES[self.cfg.cell]), T), np.nan, np.float32)
                arrays["gate_saturation"] = arrays["gate_mean"].copy()
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
        # every consumer (Recorder, History, a training service) sees seq_len long arrays, NaN where
        # a curriculum has not reached yet
        return {name: pad_time(name, a, self.cfg.seq_len) for name, a in arrays.items()}

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float | None, np.ndarray]:
        """(val loss, val accuracy or None for regression, (B,) loss of each validation sequence)."""
        xv, yv = self.val_batch
        self.model.eval()
        try:
            pred = self.model(xv, self.engine, record=False, interrupt=self._check_stop).pred
        finally:
            self.model.train()
        per_seq = sequence_losses(self.spec, pred, yv).double().cpu().numpy()
        return float(task_loss(self.spec, pred, yv)), accuracy(self.spec, pred, yv), per_seq

    @torch.no_grad()
    def evaluate_train(self) -> float:
        """The loss on the training set's first 256 sequences, measured as the validation loss is (eval
        mode: no dropout; no input noise), so the two differ only by what the model has seen."""
        xt, yt = self.train_eval_batch
        self.model.eval()
        try:
            pred = self.model(xt, self.engine, record=False, interrupt=self._check_stop).pred
        finally:
            self.model.train()
        return float(task_loss(self.spec, pred, yt))

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
            self._end_by_request(f"stopped by request after step {self.step_index - 1}")

    def summary(self) -> dict:
        return summarize(self)

    # --- state, for checkpoints ---------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to continue exactly. Its tensors are the live ones, not copies: save it
        (checkpoint.save_state) or clone it before training on."""
        return {
            "step": self.step_index, "status": self.status, "reason": self.reason, "diverged_at": self.diverged_at,
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "rng": dict(self.rng_state),  # dropout's generator (cpu, cuda)
            "data_rng": self.gen.get_state(),  # training batches and input noise
            "best_val": None if math.isinf(self.best_val) else self.best_val, "bad_evals": self.bad_evals,
            "last_val": self.last_val, "last_val_accuracy": self.last_val_accuracy, "val_losses": self.val_losses,
            "last_train_eval": self.last_train_eval,
            # the fixed set is rebuilt from the seed; only where the epoch stands is saved
            **({"train_set": self.train_set.state()} if self.train_set is not None else {}),
        }

    def load_state(self, state: dict) -> None:
        """Take back a state() of a Trainer built from the same config (the step budget may differ)."""
        self.model.load_state_dict(state["model"])  # copies into the parameters
        # the optimizer would adopt the given tensors as its own, and update them in place
        self.opt.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.rng_state = {"cpu": state["rng"]["cpu"]}
        if "cuda" in state["rng"] and self.device.type == "cuda":
            self.rng_state["cuda"] = state["rng"]["cuda"]
        self.gen.set_state(state["data_rng"])
        self.step_index, self.diverged_at = state["step"], state["diverged_at"]
        self.status, self.reason = state["status"], state["reason"]
        self.best_val = math.inf if state["best_val"] is None else state["best_val"]
        self.bad_evals, self.last_val = state["bad_evals"], state["last_val"]
        self.last_val_accuracy = state.get("last_val_accuracy")
        vl = state.get("val_losses")
        self.val_losses = None if vl is None else np.asarray(vl, np.float64)
        self.last_train_eval = state.get("last_train_eval")
        if self.train_set is not None and "train_set" in state:
            self.train_set.load_state(state["train_set"])

    # --- conveniences over persist --------------------------------------------------------
    def save(self) -> None:
        """Write the run store now (when the trainer has an out_dir)."""
        if self.writer is not None:
            self.writer.save(self)

    @classmethod
    def resume(cls, out_dir: str | Path, steps: int | None = None) -> "Trainer":
        """Continue a stopped (or killed) run from its last checkpoint. `steps` may raise the step budget."""
        from .persist import resume

        return resume(out_dir, steps, cls)
