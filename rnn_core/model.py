"""The sequence model: stacked recurrent layers (each direction its own layer), optional
normalisation, residual skips, dropout and an attention readout, then a linear readout.

Every layer and direction is a separate `RecurrentLayer`, so the outputs of every layer
are at hand for norms, skips and, above all, for reading ∂L/∂h_t of each one.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from .config import RunConfig
from .engines import LayerTrace, run_fused, run_unrolled
from .layers import RecurrentLayer
from .tasks import TaskSpec

ATTN_KEEP_QUERIES = 32  # every-step tasks: attention of the last 32 queries is recorded
ATTN_SAMPLES = 4  # raw attention maps kept per recorded step, besides the batch mean


@dataclass
class ForwardResult:
    pred: Tensor  # (B, O) for last-step tasks, (T, B, O) for every-step tasks
    traces: list[LayerTrace]  # layer-major, direction-minor: index = layer * D + direction
    attention: Tensor | None  # (B, Q, T) weights of the recorded queries


class Attention(nn.Module):
    """Attention over the top layer's states: a path to every h_t that skips the recurrence."""

    def __init__(self, size: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "additive":  # Bahdanau: v^T tanh(W_q q + W_k k)
            self.w_q = nn.Linear(size, size, bias=False)
            self.w_k = nn.Linear(size, size)
            self.v = nn.Linear(size, 1, bias=False)

    def forward(self, queries: Tensor, keys: Tensor, causal: bool) -> tuple[Tensor, Tensor]:
        # queries (Q, B, F), keys (T, B, F) -> context (Q, B, F), weights (B, Q, T)
        q, k = queries.transpose(0, 1), keys.transpose(0, 1)  # (B, Q, F), (B, T, F)
        if self.kind == "dot":
            scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])  # (B, Q, T)
        else:
            scores = self.v(torch.tanh(self.w_q(q)[:, :, None] + self.w_k(k)[:, None])).squeeze(-1)  # (B, Q, T)
        if causal:  # query t may only look at keys s <= t: an every-step prediction must not see the future
            Q, T = scores.shape[1:]
            mask = torch.ones(Q, T, dtype=torch.bool, device=scores.device).triu(T - Q + 1)
            scores = scores.masked_fill(mask, float("-inf"))
        weights = scores.softmax(-1)
        context = (weights @ k).transpose(0, 1)  # (Q, B, F)
        return context, weights


class SeqModel(nn.Module):
    def __init__(self, cfg: RunConfig, spec: TaskSpec):
        super().__init__()
        self.cfg, self.spec = cfg, spec
        H, L = cfg.hidden_size, cfg.layers
        D = 2 if cfg.bidirectional else 1
        F = D * H  # features a layer hands up
        self.directions = D
        self.embed = nn.Embedding(spec.input_size, cfg.embed_size) if spec.tokens else None
        in_sizes = [cfg.embed_size if spec.tokens else spec.input_size] + [F] * (L - 1)
        self.layers = nn.ModuleList(
            nn.ModuleList(RecurrentLayer(cfg.cell, in_sizes[l], H, cfg.activation) for _ in range(D)) for l in range(L))
        norm = {"none": lambda: nn.Identity(), "layer": lambda: nn.LayerNorm(F), "batch": lambda: _SeqBatchNorm(F)}
        self.norms = nn.ModuleList(norm[cfg.norm]() for _ in range(L))
        # Residual: the input of layer l+1 is layer l's output plus layer l's input (projected if sizes differ).
        self.skips = nn.ModuleList(
            (nn.Identity() if in_sizes[l] == F else nn.Linear(in_sizes[l], F, bias=False)) for l in range(L - 1)
        ) if cfg.residual else None
        self.drop = nn.Dropout(cfg.dropout)
        self.attention = Attention(F, cfg.attention) if cfg.attention != "none" else None
        self.readout = nn.Linear(2 * F if self.attention else F, spec.output_size)
        self._init(cfg)

    @torch.no_grad()
    def _init(self, cfg: RunConfig) -> None:
        for layer in self.recurrent_layers():
            layer.init_recurrent(cfg.init, cfg.init_gain)
            if cfg.cell == "lstm":
                layer.set_forget_bias(cfg.forget_bias)
            if cfg.cell == "rnn" and cfg.init == "identity":
                layer.bias_ih.zero_()  # IRNN (Le et al. 2015): identity W_hh and zero bias
                layer.bias_hh.zero_()

    def recurrent_layers(self) -> list[RecurrentLayer]:
        return [layer for dirs in self.layers for layer in dirs]

    def forward(self, x: Tensor, engine: str = "fused", record: bool = False,
                interrupt: Callable[[], None] | None = None) -> ForwardResult:
        """`interrupt` is called before each layer-direction, forward and backward; it raises to abort
        the step (a stop request): one layer-direction of a big model takes seconds, a step minutes."""
        # x (T, B, I) floats, or (T, B) token ids
        h = self.embed(x) if self.embed is not None else x  # (T, B, I)
        traces: list[LayerTrace] = []
        run = run_fused if engine == "fused" else run_unrolled
        for l, dirs in enumerate(self.layers):
            outs = []
            for d, layer in enumerate(dirs):
                if interrupt is not None:
                    interrupt()
                inp = h if d == 0 else h.flip(0)  # the backward direction reads time reversed
                out, trace = run(layer, inp, record) if engine != "fused" else run(layer, inp, record, self.training)
                if interrupt is not None and out.requires_grad:
                    # runs when backward reaches this layer-direction's output, before its own backward
                    out.register_hook(lambda grad: interrupt())
                trace.reverse = d == 1
                traces.append(trace)
                outs.append(out if d == 0 else out.flip(0))
            y = self.norms[l](outs[0] if len(outs) == 1 else torch.cat(outs, 2))  # (T, B, F); a copy only when there are two
            if self.skips is not None and l < len(self.layers) - 1:
                y = y + self.skips[l](h)
            h = self.drop(y)
        return self._read(h, traces)

    def _read(self, h: Tensor, traces: list[LayerTrace]) -> ForwardResult:
        # h (T, B, F) top-layer states
        H = self.cfg.hidden_size
        if self.spec.read == "last":
            # the top layer's final state: forward direction at t = T-1, backward direction at t = 0
            last = h[-1] if self.directions == 1 else torch.cat([h[-1, :, :H], h[0, :, H:]], 1)  # (B, F)
            if self.attention is None:
                return ForwardResult(self.readout(last), traces, None)
            context, weights = self.attention(last[None], h, causal=False)  # (1, B, F), (B, 1, T)
            return ForwardResult(self.readout(torch.cat([context[0], last], 1)), traces, weights.detach())
        if self.attention is None:
            return ForwardResult(self.readout(h), traces, None)
        context, weights = self.attention(h, h, causal=True)  # (T, B, F), (B, T, T)
        pred = self.readout(torch.cat([context, h], 2))  # (T, B, O)
        return ForwardResult(pred, traces, weights[:, -ATTN_KEEP_QUERIES:].detach())


class _SeqBatchNorm(nn.Module):
    """Sequence-wise batch norm (Laurent et al. 2016): statistics over every (t, b) of a feature."""

    def __init__(self, size: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(size)

    def forward(self, y: Tensor) -> Tensor:
        T, B, F = y.shape
        return self.bn(y.reshape(T * B, F)).reshape(T, B, F)


# Weight init and dropout draw from torch's one global generator, which every thread of a process
# shares. Whoever seeds it and draws from it holds this lock: two trainers in two threads (the
# thread pool, AppTest's sessions) drew each other's numbers without it, and the same config and
# seed trained to a different loss when another run started beside it (tests/test_service.py).
GLOBAL_RNG = threading.RLock()


def build_model(cfg: RunConfig, spec: TaskSpec) -> SeqModel:
    """Build on the CPU from the seed alone, so every engine and device starts from identical weights."""
    with GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return SeqModel(cfg, spec)
