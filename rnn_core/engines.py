"""Two ways to run one recurrent layer, and to read ∂L/∂h_t for every t after backward.

- `run_unrolled`: the cell in a Python loop, `retain_grad()` on every h_t. Slow, obviously
  right: the reference the tests hold the fused engine to.
- `run_fused`: PyTorch's fused kernel (cuDNN on GPU) with a zero probe fed as extra input
  (see shared/GRADIENTS.md). The probe's gradient is the part of ∂L/∂h_{t-1} that flows
  back through the recurrence; the output's own gradient is the direct part. Their sum is
  the exact total, at close to the cost of plain training.

Both return the layer's outputs (T, B, H) and a trace; call `trace.read()` after
`loss.backward()` to get the diagnostics as float64 numpy arrays in time order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .cells import GATES, gru_cell, lstm_cell, rnn_cell
from .layers import RecurrentLayer

SAT_SIGMOID = (0.05, 0.95)  # a sigmoid gate outside this band is saturated: its derivative is < 0.05
SAT_TANH = 0.95  # |tanh| above this is saturated: derivative < 0.1


@dataclass
class LayerReadout:
    """Diagnostics of one layer and direction over time, every array indexed by original timestep."""
    grad_h: np.ndarray  # (T,) ‖∂L/∂h_t‖ over batch and hidden, float64
    grad_c: np.ndarray | None  # (T,) ‖∂L/∂c_t‖, LSTM only
    gate_mean: np.ndarray | None  # (G, T) mean activation of each gate
    gate_saturation: np.ndarray | None  # (G, T) fraction of units saturated
    hidden_saturation: np.ndarray  # (T,) saturated fraction of h_t (relu: dead fraction; linear: NaN)


@dataclass
class LayerTrace:
    layer: RecurrentLayer
    out: Tensor  # (T, B, H) outputs in the layer's own time order, grad retained
    reverse: bool
    h0: Tensor  # (B, H)
    x: Tensor | None = None  # (T, B, I) detached input, fused engine (gate recompute)
    probe: Tensor | None = None  # (T, B, H) or (T, B, 3H), fused engine
    hs: list[Tensor] = field(default_factory=list)  # unrolled: each h_t, grad retained
    cs: list[Tensor] = field(default_factory=list)  # unrolled LSTM: each c_t, grad retained
    gates: Tensor | None = None  # unrolled: (T, B, G, H)

    def read(self) -> LayerReadout:
        readout = _read_unrolled(self) if self.hs else _read_fused(self)
        if self.reverse:  # back to original time order
            readout = LayerReadout(*[None if a is None else np.ascontiguousarray(a[..., ::-1]) for a in
                                     (readout.grad_h, readout.grad_c, readout.gate_mean, readout.gate_saturation,
                                      readout.hidden_saturation)])
        return readout


def run_unrolled(layer: RecurrentLayer, x: Tensor, record: bool) -> tuple[Tensor, LayerTrace]:
    # x (T, B, I) -> out (T, B, H)
    T, B, _ = x.shape
    w = layer.weights()
    h = x.new_zeros(B, layer.hidden_size)
    c = x.new_zeros(B, layer.hidden_size)
    trace = LayerTrace(layer, out=None, reverse=False, h0=h)  # type: ignore[arg-type]
    hs, gates = [], []
    for x_t in x.unbind(0):  # unbind, not x[t]: indexing in a loop made backward O(T²)
        if layer.cell == "rnn":
            h = rnn_cell(x_t, h, *w, activation=layer.activation)
        elif layer.cell == "lstm":
            h, c, g = lstm_cell(x_t, h, c, *w)
            gates.append(g)
        else:
            h, g = gru_cell(x_t, h, *w)
            gates.append(g)
        if record:
            h.retain_grad()
            if layer.cell == "lstm":
                c.retain_grad()
                trace.cs.append(c)
        hs.append(h)
    out = torch.stack(hs)  # (T, B, H)
    if record:
        trace.hs = hs
        trace.gates = torch.stack(gates).detach() if gates else None
    trace.out = out
    return out, trace


def run_fused(layer: RecurrentLayer, x: Tensor, record: bool, train: bool = True) -> tuple[Tensor, LayerTrace]:
    # x (T, B, I) -> out (T, B, H)
    T, B, _ = x.shape
    H = layer.hidden_size
    w_ih, w_hh, b_ih, b_hh = layer.weights()
    h0 = x.new_zeros(1, B, H)
    probe = None
    x_in = x
    if record:
        if layer.cell == "gru":
            # r ⊙ (W_hn h + b_hn) and z ⊙ h keep the GRU from the W_hh trick: probe the three
            # input-side gate pre-activations instead, through identity columns.
            probe = x.new_zeros(T, B, 3 * H, requires_grad=True)
            w_ih = torch.cat([w_ih, torch.eye(3 * H, dtype=x.dtype, device=x.device)], 1)
        else:
            # Columns W_hh (detached, so W_hh's own gradient is unchanged) make the probe's
            # gradient W_hh^T δ_t: the part of ∂L/∂h_{t-1} that flows through step t.
            probe = x.new_zeros(T, B, H, requires_grad=True)
            w_ih = torch.cat([w_ih, w_hh.detach()], 1)
        x_in = torch.cat([x, probe], 2)  # (T, B, I + H) or (T, B, I + 3H); the probe is 0, values unchanged
    params = [w_ih, w_hh, b_ih, b_hh]
    if layer.cell == "lstm":
        out, _, _ = torch.lstm(x_in, [h0, h0], params, True, 1, 0.0, train, False, False)
    elif layer.cell == "gru":
        out, _ = torch.gru(x_in, h0, params, True, 1, 0.0, train, False, False)
    elif layer.activation == "relu":
        out, _ = torch.rnn_relu(x_in, h0, params, True, 1, 0.0, train, False, False)
    else:
        out, _ = torch.rnn_tanh(x_in, h0, params, True, 1, 0.0, train, False, False)
    trace = LayerTrace(layer, out=out, reverse=False, h0=h0[0], probe=probe)
    if record:
        out.retain_grad()
        if layer.cell != "rnn":
            trace.x = x.detach()
    return out, trace


def fused_supported(cell: str, activation: str) -> bool:
    return cell != "rnn" or activation in ("tanh", "relu")


# --- reading the traces after backward -------------------------------------------

def _norms(g: Tensor) -> np.ndarray:
    # (T, B, H) -> (T,) in float64: a vanished gradient underflows a float32 sum of squares.
    return torch.linalg.vector_norm(g, dim=(1, 2), dtype=torch.float64).cpu().numpy()


def _grad_or_zeros(t: Tensor) -> Tensor:
    return t.grad if t.grad is not None else torch.zeros_like(t)


def _read_unrolled(tr: LayerTrace) -> LayerReadout:
    G = torch.stack([_grad_or_zeros(h) for h in tr.hs])  # (T, B, H) total ∂L/∂h_t
    grad_c = _norms(torch.stack([_grad_or_zeros(c) for c in tr.cs])) if tr.cs else None
    return _readout(tr, G, grad_c, tr.gates, tr.out.detach())


def _read_fused(tr: LayerTrace) -> LayerReadout:
    layer, out = tr.layer, tr.out.detach()
    H = layer.hidden_size
    direct = _grad_or_zeros(tr.out)  # (T, B, H): what reaches h_t from the loss or the layer above
    through = tr.probe.grad if tr.probe.grad is not None else torch.zeros_like(tr.probe)
    if layer.cell == "rnn":
        return _readout(tr, _shift_add(direct, through), None, None, out)

    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in layer.weights())
    h_prev = torch.cat([tr.h0.detach()[None], out[:-1]])  # (T, B, H): h_{t-1} for every t
    gi = tr.x @ w_ih.T + b_ih  # (T, B, G·H), all steps in one matmul
    gh = h_prev @ w_hh.T + b_hh  # (T, B, G·H)

    if layer.cell == "lstm":
        i, f, g, o = (gi + gh).chunk(4, 2)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        Gh = _shift_add(direct, through)
        # c_t = f_t c_{t-1} + i_t g_t, then ∂L/∂c_t = ∂L/∂h_t o_t (1 − tanh² c_t) + f_{t+1} ∂L/∂c_{t+1}
        c = _scan_forward(f, i * g)  # (T, B, H)
        local = Gh * o * (1 - torch.tanh(c) ** 2)
        dc = _scan_reverse(local, f)
        return _readout(tr, Gh, _norms(dc), torch.stack([i, f, g, o], 2), out)

    # GRU: the probe gives δ_r, δ_z, δ_n of step t; ∂L/∂h_{t-1} also has the direct path z_t ⊙ G_t.
    i_r, i_z, i_n = gi.chunk(3, 2)
    h_r, h_z, h_n = gh.chunk(3, 2)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    d_r, d_z, d_n = through.chunk(3, 2)
    via_gates = torch.cat([d_r, d_z, r * d_n], 2) @ w_hh  # (T, B, H): W_hr^T δ_r + W_hz^T δ_z + W_hn^T (r ⊙ δ_n)
    a = _shift_add(direct, via_gates)
    Gh = _scan_reverse(a, z)  # G_{t-1} = a_{t-1} + z_t ⊙ G_t
    return _readout(tr, Gh, None, torch.stack([r, z, n], 2), out)


def _shift_add(direct: Tensor, through: Tensor) -> Tensor:
    # ∂L/∂h_t = direct[t] + through[t+1], with through[T] = 0
    total = direct.clone()
    total[:-1] += through[1:]
    return total


def _scan_forward(decay: Tensor, inp: Tensor) -> Tensor:
    # s_t = decay_t ⊙ s_{t-1} + inp_t, s_{-1} = 0; (T, B, H)
    s = torch.zeros_like(inp[0])
    out = []
    for d_t, u_t in zip(decay.unbind(0), inp.unbind(0)):
        s = d_t * s + u_t
        out.append(s)
    return torch.stack(out)


def _scan_reverse(a: Tensor, decay: Tensor) -> Tensor:
    # s_t = a_t + decay_{t+1} ⊙ s_{t+1}, s_{T-1} = a_{T-1}; (T, B, H)
    a_list, d_list = a.unbind(0), decay.unbind(0)
    T = len(a_list)
    out = [None] * T
    s = a_list[T - 1]
    out[T - 1] = s
    for t in range(T - 2, -1, -1):
        s = a_list[t] + d_list[t + 1] * s
        out[t] = s
    return torch.stack(out)


def _readout(tr: LayerTrace, Gh: Tensor, grad_c, gates: Tensor | None, out: Tensor) -> LayerReadout:
    gate_mean = gate_sat = None
    if gates is not None:  # (T, B, G, H)
        gates = gates.float()
        gate_mean = gates.mean((1, 3)).T.double().cpu().numpy()  # (G, T)
        sat = torch.zeros_like(gates, dtype=torch.bool)
        for k, name in enumerate(GATES[tr.layer.cell]):
            g = gates[:, :, k]
            sat[:, :, k] = g.abs() > SAT_TANH if name in ("g", "n") else (g < SAT_SIGMOID[0]) | (g > SAT_SIGMOID[1])
        gate_sat = sat.float().mean((1, 3)).T.double().cpu().numpy()
    return LayerReadout(_norms(Gh), grad_c, gate_mean, gate_sat, hidden_saturation(out, tr.layer))


def hidden_saturation(out: Tensor, layer: RecurrentLayer) -> np.ndarray:
    """(T,) fraction of saturated units: |h| > 0.95 for tanh-like states, sigmoid outside [0.05, 0.95],
    and for relu the dead fraction (h == 0, no gradient passes). A linear RNN cannot saturate: NaN."""
    act = layer.activation if layer.cell == "rnn" else "tanh"
    if act == "relu":
        frac = (out <= 0).float().mean((1, 2))
    elif act == "sigmoid":
        frac = ((out < SAT_SIGMOID[0]) | (out > SAT_SIGMOID[1])).float().mean((1, 2))
    elif act == "linear":
        return np.full(out.shape[0], np.nan)
    else:
        frac = (out.abs() > SAT_TANH).float().mean((1, 2))
    return frac.double().cpu().numpy()
