"""Explicit recurrent cells: the equations in plain view, used by the unrolled reference engine.

Weights use PyTorch's layout and gate order, so a layer's parameters can be handed
unchanged to the fused kernels (and copied into nn.RNN / nn.LSTM / nn.GRU for parity tests).

Vanilla RNN:   h_t = φ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

LSTM (gates i, f, g, o):
    i = σ(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = σ(W_if x + b_if + W_hf h + b_hf)      forget gate
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)   candidate
    o = σ(W_io x + b_io + W_ho h + b_ho)      output gate
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

GRU (gates r, z, n):
    r = σ(W_ir x + b_ir + W_hr h + b_hr)      reset gate
    z = σ(W_iz x + b_iz + W_hz h + b_hz)      update gate
    n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
"""
from __future__ import annotations

import torch
from torch import Tensor

ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "linear": lambda v: v,
}

GATES = {"rnn": (), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
GATE_MULT = {"rnn": 1, "lstm": 4, "gru": 3}  # rows of W_hh per hidden unit


def rnn_cell(x: Tensor, h: Tensor, w_ih, w_hh, b_ih, b_hh, activation: str = "tanh") -> Tensor:
    # x (B, I), h (B, H) -> h (B, H)
    return ACTIVATIONS[activation](x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, w_ih, w_hh, b_ih, b_hh):
    # x (B, I), h (B, H), c (B, H) -> h, c (B, H), gates (B, 4, H)
    pre = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh  # (B, 4H)
    i, f, g, o = pre.chunk(4, 1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    h = o * torch.tanh(c)
    return h, c, torch.stack([i, f, g, o], 1)


def gru_cell(x: Tensor, h: Tensor, w_ih, w_hh, b_ih, b_hh):
    # x (B, I), h (B, H) -> h (B, H), gates (B, 3, H)
    gi = x @ w_ih.T + b_ih  # (B, 3H)
    gh = h @ w_hh.T + b_hh  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, 1)
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, torch.stack([r, z, n], 1)
