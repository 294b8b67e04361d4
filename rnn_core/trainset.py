"""A finite training set (`train_size` > 0): N sequences drawn once, served in reshuffled epochs.

The synthetic tasks draw fresh sequences every step, so a model never sees one twice and
cannot overfit. With a fixed set it can: the training loss falls below the validation loss,
and dropout, weight decay, input noise and early stopping get something to fix.

- The set is drawn from its own generator, seeded from the run's seed, so a resumed run (or a
  second run with the same seed) rebuilds exactly the same set without saving it.
- It never holds a validation sequence, nor one sequence twice: rows equal to a validation
  row or to an earlier row are dropped and redrawn. For the continuous tasks (adding, sine)
  an exact float32 match has probability ~0, but copy, temporal_order and charlm draw from a
  finite space (temporal_order at T=8 has only 1,024 sequences), so the check is made for all.
  Where the space has fewer than N sequences outside the validation batch, the set repeats
  what it found (the only case with repeats).
- Each epoch is a fresh permutation drawn from the training data generator (the one that also
  draws input noise), so the order is seeded and the checkpoint carries it (state/load_state).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .tasks import make_batch

if TYPE_CHECKING:
    from .config import RunConfig
    from .tasks import TaskSpec

SET_SEED_OFFSET = 3_000_003  # the set's generator: apart from the data stream (+1_000_003) and validation (+2_000_003)
REDRAW_ROUNDS = 20  # rounds of drawing that may replace dropped rows before the set accepts repeats
TRAIN_EVAL = 256  # training sequences the training loss is measured on at each evaluation, as val_loss is


def _rows(x: torch.Tensor, y: torch.Tensor, y_axis: int) -> list[bytes]:
    """One bytes key per sequence of a batch (x's batch axis is 1, y's is `y_axis`)."""
    xs = x.transpose(0, 1).reshape(x.shape[1], -1).contiguous().numpy()  # (N, T·I)
    ys = y.movedim(y_axis, 0).reshape(y.shape[y_axis], -1).contiguous().numpy()  # (N, ·)
    return [a.tobytes() + b.tobytes() for a, b in zip(xs, ys)]


def draw_set(cfg: "RunConfig", spec: "TaskSpec", n: int, val: tuple[torch.Tensor, torch.Tensor]):
    """(x, y) of n training sequences, drawn from the run's seed: none equal to a validation
    sequence, none twice (unless the task has fewer than n others). x (T, n, I) or (T, n); y with
    its batch axis where make_batch puts it."""
    y_axis = 0 if spec.read == "last" else 1
    gen = torch.Generator().manual_seed(cfg.seed + SET_SEED_OFFSET)
    taken = set(_rows(*val, y_axis))
    xs, ys, have = [], [], 0
    for _ in range(REDRAW_ROUNDS):
        want = n - have
        if want == 0:
            break
        x, y = make_batch(cfg, gen, max(want, 64), split="train", distinct=True)
        keep = []
        for i, key in enumerate(_rows(x, y, y_axis)):
            if key not in taken and len(keep) < want:
                taken.add(key)
                keep.append(i)
        idx = torch.tensor(keep, dtype=torch.long)
        xs.append(x.index_select(1, idx))
        ys.append(y.index_select(y_axis, idx))
        have += len(keep)
    x, y = torch.cat(xs, 1), torch.cat(ys, y_axis)
    if have < n:  # a small discrete space: cycle through the distinct sequences found
        if have == 0:
            raise ValueError(f"task={cfg.task} with seq_len={cfg.seq_len} has no training sequence outside "
                             "the validation batch")
        idx = torch.arange(n) % have
        x, y = x.index_select(1, idx), y.index_select(y_axis, idx)
    return x, y


class TrainSet:
    """The fixed set and where the current epoch stands in it."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, y_axis: int):
        self.x, self.y, self.y_axis = x, y, y_axis  # x (T, N, ...), y (N, ...) or (T, N, ...)
        self.n = x.shape[1]
        self.order: torch.Tensor | None = None  # (N,) this epoch's permutation; None before the first batch
        self.pos = 0  # sequences of this epoch already served
        self.epoch = 0  # epochs started

    @classmethod
    def draw(cls, cfg: "RunConfig", spec: "TaskSpec", val: tuple[torch.Tensor, torch.Tensor]) -> "TrainSet":
        return cls(*draw_set(cfg, spec, cfg.train_size, val), 0 if spec.read == "last" else 1)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x.index_select(1, idx), self.y.index_select(self.y_axis, idx)

    def indices(self, batch_size: int, gen: torch.Generator) -> torch.Tensor:
        """(B,) set indices of the next batch; an epoch that runs out mid-batch wraps into a new one."""
        parts, need = [], batch_size
        while need:
            if self.order is None or self.pos == self.n:
                self.order, self.pos = torch.randperm(self.n, generator=gen), 0
                self.epoch += 1
            k = min(need, self.n - self.pos)
            parts.append(self.order[self.pos:self.pos + k])
            self.pos += k
            need -= k
        return torch.cat(parts)

    def batch(self, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.take(self.indices(batch_size, gen))

    def head(self, k: int = TRAIN_EVAL) -> tuple[torch.Tensor, torch.Tensor]:
        """The first k sequences of the set (in set order): what the training loss is measured on."""
        return self.take(torch.arange(min(k, self.n)))

    # --- for checkpoints: the set itself is rebuilt from the seed, only the position is saved ---
    def state(self) -> dict:
        order = self.order if self.order is not None else torch.zeros(0, dtype=torch.long)
        return {"order": order, "pos": self.pos, "epoch": self.epoch}

    def load_state(self, state: dict) -> None:
        order = torch.as_tensor(state["order"], dtype=torch.long).clone() if len(state["order"]) else None
        if order is not None and len(order) != self.n:
            raise ValueError(f"the saved epoch order has {len(order)} entries, the training set {self.n}")
        self.order, self.pos, self.epoch = order, int(state["pos"]), int(state["epoch"])
