"""Long-range tasks, generated on the fly from a seed (or read from small bundled data).

Every batch is time-major: inputs x (T, B, I) float, or (T, B) long token ids for charlm.
Targets are y (B, O) for a regression read at the last step, (B,) class ids for a
classification read at the last step, or (T, B) / (T, B, O) when every step is scored.
Each task states its baseline: the loss of the best input-blind guess, the bar to beat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from . import rules

if TYPE_CHECKING:
    from .config import RunConfig

COPY_SYMBOLS = 10  # symbols to remember
COPY_ALPHABET = 8  # drawn from 1..8; 0 is blank, 9 the delimiter
TEMPORAL_SYMBOLS = 8  # a b c d (distractors), X Y (relevant), B E (start/end)
CORPUS = Path(__file__).parent / "data" / "corpus.txt"


@dataclass(frozen=True)
class TaskSpec:
    input_size: int  # features per step (vocabulary size for token tasks)
    output_size: int  # regression outputs or classes
    loss: Literal["mse", "ce"]
    read: Literal["last", "every"]  # score the last step only, or every step
    baseline: float  # loss of the best input-blind guess, in the task's loss units
    baseline_name: str
    tokens: bool = False  # inputs are token ids that go through an embedding


def min_seq_len(cfg: "RunConfig") -> int:
    """The shortest sequence the task can be laid out in (the table is in rules.py)."""
    return rules.min_seq_len(cfg.task)


def fixed_seq_len(cfg: "RunConfig") -> int | None:
    """digits has a fixed length: 64 pixels or 8 rows (the table is in rules.py)."""
    return rules.fixed_seq_len(cfg.task, cfg.digits_mode)


def spec(cfg: "RunConfig") -> TaskSpec:
    T = cfg.seq_len
    if cfg.task == "adding":
        # Predicting 1 (the mean of a sum of two U[0,1]) leaves the variance 2/12.
        return TaskSpec(2, 1, "mse", "last", 1.0 / 6.0, "predict 1")
    if cfg.task == "copy":
        # Blanks are free to predict; the 10 symbols at the end cost ln 8 each when guessed.
        return TaskSpec(COPY_SYMBOLS, COPY_SYMBOLS, "ce", "every", COPY_SYMBOLS * math.log(COPY_ALPHABET) / T,
                        "blanks then uniform guess: 10·ln8/T")
    if cfg.task == "temporal_order":
        return TaskSpec(TEMPORAL_SYMBOLS, 4, "ce", "last", math.log(4), "chance: ln 4")
    if cfg.task == "digits":
        return TaskSpec(1 if cfg.digits_mode == "pixel" else 8, 10, "ce", "last", _digits_prior_entropy(), "class prior entropy")
    if cfg.task == "sine":
        return TaskSpec(1, 1, "mse", "every", _sine_persistence_mse(cfg.seed, T, cfg.forecast_steps),
                        f"persistence: x[t+{cfg.forecast_steps}] = x[t]")
    if cfg.task == "charlm":
        vocab, probs = _corpus_vocab()
        unigram = float(-(probs * np.log(probs)).sum())
        return TaskSpec(len(vocab), len(vocab), "ce", "every", unigram, f"unigram: {unigram / math.log(2):.3f} bits/char", tokens=True)
    raise ValueError(f"unknown task {cfg.task}")


def baseline_loss(cfg: "RunConfig", x: torch.Tensor, y: torch.Tensor) -> float:
    """The loss of the task's input-blind predictor on this very batch (for adding, the best constant).

    The closed-form baseline is an expectation; a 256-sequence validation batch can sit well
    below it (for adding at T=50, seed 0: 0.152 against 1/6), so a model that only learned the
    mean would seem to beat 1/6. A run beats the baseline when its val loss beats this number
    on the same batch.
    """
    if cfg.task == "adding":  # the best constant for this batch (1 in expectation): its variance
        return float(((y - y.mean()) ** 2).mean())
    if cfg.task == "sine":
        return float(((y - x) ** 2).mean())  # persistence: the input is the series `forecast_steps` back
    if cfg.task in ("digits", "charlm"):
        prior = _digits_prior() if cfg.task == "digits" else torch.from_numpy(_corpus_vocab()[1])
        return float(-prior.log()[y.reshape(-1)].mean())
    return spec(cfg).baseline  # copy, temporal_order: the same for every batch


def make_batch(cfg: "RunConfig", gen: torch.Generator, batch_size: int, seq_len: int | None = None, split: str = "train",
               distinct: bool = False):
    """One batch (x, y) on the CPU, drawn from `gen`. `seq_len` overrides cfg.seq_len (curriculum).
    `distinct`: digits draws its images without replacement (a fixed training set; at most 1500)."""
    T = seq_len or cfg.seq_len
    B = batch_size
    if cfg.task == "adding":
        return _adding(gen, T, B)
    if cfg.task == "copy":
        return _copy(gen, T, B)
    if cfg.task == "temporal_order":
        return _temporal_order(gen, T, B)
    if cfg.task == "digits":
        return _digits(gen, B, cfg.digits_mode, split, distinct)
    if cfg.task == "sine":
        return _sine(gen, T, B, cfg.forecast_steps)
    if cfg.task == "charlm":
        return _charlm(gen, T, B, split)
    raise ValueError(f"unknown task {cfg.task}")


def _adding(gen, T, B):
    values = torch.rand(T, B, generator=gen)  # (T, B)
    marks = torch.zeros(T, B)
    half = max(T // 2, 1)
    first = torch.randint(0, half, (B,), generator=gen)  # one mark in each half
    second = torch.randint(half, T, (B,), generator=gen) if T > half else torch.full((B,), T - 1)
    cols = torch.arange(B)
    marks[first, cols] = 1.0
    marks[second, cols] = 1.0
    x = torch.stack([values, marks], dim=2)  # (T, B, 2)
    y = (values * marks).sum(0, keepdim=False).unsqueeze(1)  # (B, 1)
    return x, y


def _copy(gen, T, B):
    # Layout (T steps): 10 symbols at t=0..9, T-21 blanks, the delimiter at t=T-11, then 10 blank
    # input steps in which the answer is output (the target is blank everywhere else).
    S = COPY_SYMBOLS
    symbols = torch.randint(1, COPY_ALPHABET + 1, (S, B), generator=gen)  # (S, B)
    tokens = torch.zeros(T, B, dtype=torch.long)
    tokens[:S] = symbols
    tokens[T - S - 1] = COPY_SYMBOLS - 1  # delimiter 9
    target = torch.zeros(T, B, dtype=torch.long)
    target[T - S:] = symbols
    x = torch.nn.functional.one_hot(tokens, COPY_SYMBOLS).float()  # (T, B, 10)
    return x, target  # target (T, B)


def _temporal_order(gen, T, B):
    # Symbols: 0-3 distractors a-d, 4 X, 5 Y, 6 B (start), 7 E (end). Class = order of the two X/Y.
    tokens = torch.randint(0, 4, (T, B), generator=gen)
    tokens[0] = 6
    tokens[T - 1] = 7
    lo1, hi1 = max(1, T // 10), max(2, T // 5)
    lo2, hi2 = max(hi1, T // 2), max(hi1 + 1, (3 * T) // 5)
    p1 = torch.randint(lo1, hi1, (B,), generator=gen)
    p2 = torch.randint(lo2, min(hi2, T - 1), (B,), generator=gen) if min(hi2, T - 1) > lo2 else torch.full((B,), min(lo2, T - 2))
    a = torch.randint(0, 2, (B,), generator=gen)
    b = torch.randint(0, 2, (B,), generator=gen)
    cols = torch.arange(B)
    tokens[p1, cols] = 4 + a
    tokens[p2, cols] = 4 + b
    x = torch.nn.functional.one_hot(tokens, TEMPORAL_SYMBOLS).float()  # (T, B, 8)
    return x, 2 * a + b  # (B,)


@lru_cache(maxsize=1)
def _digits_data():
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.tensor(d.images / 16.0, dtype=torch.float32)  # (N, 8, 8) in [0, 1]
    labels = torch.tensor(d.target, dtype=torch.long)
    # A fixed split: the last 297 images are held out for validation.
    return (images[:1500], labels[:1500]), (images[1500:], labels[1500:])


def _digits_prior() -> torch.Tensor:
    (_, labels), _ = _digits_data()
    return torch.bincount(labels, minlength=10).double() / len(labels)  # (10,) training class frequencies


def _digits_prior_entropy() -> float:
    p = _digits_prior()
    return float(-(p * p.log()).sum())


def _digits(gen, B, mode, split, distinct=False):
    (images, labels) = _digits_data()[0 if split == "train" else 1]
    if distinct:
        idx = torch.randperm(len(labels), generator=gen)[:B]
    else:
        idx = torch.randint(0, len(labels), (B,), generator=gen)
    img = images[idx]  # (B, 8, 8)
    x = img.reshape(B, 64, 1) if mode == "pixel" else img  # (B, T, I)
    return x.transpose(0, 1).contiguous(), labels[idx]


def _sine_series(gen, T, B):
    # A mix of three sines with random periods (8..64 steps) and phases, plus noise.
    periods = 8 + 56 * torch.rand(3, B, generator=gen)
    phases = 2 * math.pi * torch.rand(3, B, generator=gen)
    amps = 0.3 + 0.7 * torch.rand(3, B, generator=gen)
    t = torch.arange(T, dtype=torch.float32).view(T, 1, 1)
    clean = (amps * torch.sin(2 * math.pi * t / periods + phases)).sum(1) / 2  # (T, B)
    return clean + 0.05 * torch.randn(T, B, generator=gen)


def _sine(gen, T, B, ahead):
    series = _sine_series(gen, T + ahead, B)  # (T+ahead, B): the target is the input `ahead` steps later
    return series[:T].unsqueeze(2), series[ahead:].unsqueeze(2)  # x (T, B, 1), y (T, B, 1)


@lru_cache(maxsize=8)
def _sine_persistence_mse(seed: int, T: int, ahead: int) -> float:
    gen = torch.Generator().manual_seed(seed + 7_777)
    x, y = _sine(gen, T, 1024, ahead)
    return float(((y - x) ** 2).mean())


@lru_cache(maxsize=1)
def _corpus():
    text = CORPUS.read_text(encoding="utf-8")
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(len(ids) * 0.9)  # the last 10% is held out
    return vocab, ids[:split], ids[split:]


def _corpus_vocab():
    vocab, train, _ = _corpus()
    counts = np.bincount(train.numpy(), minlength=len(vocab)).astype(np.float64) + 1e-12
    return vocab, counts / counts.sum()


def _charlm(gen, T, B, split):
    _, train, val = _corpus()
    ids = train if split == "train" else val
    start = torch.randint(0, len(ids) - T - 1, (B,), generator=gen)
    offsets = torch.arange(T + 1)
    window = ids[start.view(1, B) + offsets.view(T + 1, 1)]  # (T+1, B)
    return window[:T], window[1:]  # x (T, B) ids, y (T, B) next ids
