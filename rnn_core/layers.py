"""One recurrent layer in one direction: its parameters and their initialisation.

Both engines read the same four tensors, so the fused and the unrolled engine are
the same model, not two models that happen to be similar.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .cells import GATE_MULT


class RecurrentLayer(nn.Module):
    def __init__(self, cell: str, input_size: int, hidden_size: int, activation: str = "tanh"):
        super().__init__()
        self.cell, self.activation = cell, activation
        self.input_size, self.hidden_size = input_size, hidden_size
        G = GATE_MULT[cell] * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G, input_size))  # (G·H, I)
        self.weight_hh = nn.Parameter(torch.empty(G, hidden_size))  # (G·H, H)
        self.bias_ih = nn.Parameter(torch.empty(G))
        self.bias_hh = nn.Parameter(torch.empty(G))
        # PyTorch's own default for nn.RNN/LSTM/GRU: U(-1/√H, 1/√H) for every tensor.
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    @torch.no_grad()
    def init_recurrent(self, scheme: str, gain: float) -> None:
        """Re-initialise W_hh one H×H gate block at a time, then scale it by `gain`."""
        H = self.hidden_size
        for block in self.weight_hh.split(H, 0):  # (H, H) views
            if scheme == "xavier":
                nn.init.xavier_uniform_(block)
            elif scheme == "kaiming":
                nn.init.kaiming_uniform_(block, nonlinearity="relu" if self.activation == "relu" else "tanh")
            elif scheme == "orthogonal":
                nn.init.orthogonal_(block)
            elif scheme == "identity":
                block.copy_(torch.eye(H))
            block.mul_(gain)

    @torch.no_grad()
    def set_forget_bias(self, value: float) -> None:
        # The kernel adds b_ih and b_hh; put the whole forget bias in one so it equals `value`.
        H = self.hidden_size
        self.bias_ih[H:2 * H] = value
        self.bias_hh[H:2 * H] = 0.0
