"""Two ways to run one recurrent layer, and to read ∂L/∂h_t for every t after backward.

- `run_unrolled`: the cell in a Python loop, `retain_grad()` on every h_t. Slow, obviously
  right: the reference the tests hold the fused engine to.
- `run_fused`: PyTorch's fused kernel (cuDNN on GPU) with a zero probe fed as extra input
  (docs/method.md explains it). The probe's gradient is the part of ∂L/∂h_{t-1} that flows
  back through the recurrence; the output's own gradient is the direct part. Their sum is
  the exact total, at close to the cost of plain training.

Both return the layer's outputs (T, B, H) and a trace; call `trace.read()` after
`loss.backward()` to get the diagnostics as float64 numpy arrays in time order.
"""
from __future__ import annotations

import math
import threading
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
    probe: Tensor | None = None  # (T, B, H), GRU (T, B, 2H); fused engine
    hs: list[Tensor] = field(default_factory=list)  # unrolled: each h_t, grad retained
    cs: list[Tensor] = field(default_factory=list)  # unrolled LSTM: each c_t, grad retained
    gates: Tensor | None = None  # unrolled: (T, B, G, H)

    def read(self, gates: bool = True) -> LayerReadout:
        """gates=False leaves out the gate statistics and ‖∂L/∂c_t‖ (None): the LSTM's read is then
        ‖∂L/∂h_t‖ alone, without recomputing its gates; the GRU needs its gates for ‖∂L/∂h_t‖ anyway."""
        readout = _read_unrolled(self, gates) if self.hs else _read_fused(self, gates)
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
            # r ⊙ (W_hn h + b_hn) and z ⊙ h keep the GRU from the plain W_hh trick. Probe 2H wide:
            # columns [W_hr; W_hz; 0] (detached) give W_hr^T δ_r + W_hz^T δ_z, and columns [0; 0; I]
            # give δ_n itself, which the read multiplies by r_t before W_hn^T. (An identity probe
            # on all three gates, 3H wide, cost half again as much in the input matmuls.)
            probe = x.new_zeros(T, B, 2 * H, requires_grad=True)
            cols = x.new_zeros(3 * H, 2 * H)
            cols[:2 * H, :H] = w_hh.detach()[:2 * H]
            cols[2 * H:, H:] = torch.eye(H, dtype=x.dtype, device=x.device)
            w_ih = torch.cat([w_ih, cols], 1)
        else:
            # Columns W_hh (detached, so W_hh's own gradient is unchanged) make the probe's
            # gradient W_hh^T δ_t: the part of ∂L/∂h_{t-1} that flows through step t.
            probe = x.new_zeros(T, B, H, requires_grad=True)
            w_ih = torch.cat([w_ih, w_hh.detach()], 1)
        x_in = torch.cat([x, probe], 2)  # (T, B, I + H) or (T, B, I + 2H); the probe is 0, values unchanged
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


from .rules import fused_supported  # noqa: E402,F401 - the rule lives in the torch-free table; re-exported here


# --- reading the traces after backward -------------------------------------------
#
# Everything below works on the device, in float32, in place where it can, and hands each
# trace's arrays to the host in one transfer: on a GPU every .cpu() is a sync.

_SCRATCH = threading.local()  # per thread: two trainers in two threads never share a buffer


def _scratch(key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A scratch tensor reused from read to read, on CPU. glibc hands out blocks of 32 MB and more
    (the LSTM's gate buffer at T=1000) as fresh mmaps, and touching one costs a page fault per 4 KB:
    that alone was 20 ms of a 90 ms read. The CUDA caching allocator already reuses memory."""
    if like.device.type != "cpu":
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    cache = _SCRATCH.__dict__.setdefault("buffers", {})
    n = math.prod(shape)
    buf = cache.get((key, like.dtype))
    if buf is None or buf.numel() < n:
        buf = cache[(key, like.dtype)] = torch.empty(n, dtype=like.dtype)
    return buf[:n].view(shape)


def _norms_t(g: Tensor) -> Tensor:
    # (T, B, H) -> (T,), summed in float64 from the float32 gradient, as promised wherever the
    # numbers are shown: a vanished gradient underflows a float32 sum of squares (|g| < 1e-19), and
    # a float32 sum is only good to ~1e-6 of itself. A float32 pass with a float64 fallback is
    # 2-5× cheaper for this one reduction; we pay for float64 so every shown digit is real.
    return torch.linalg.vector_norm(g, dim=(1, 2), dtype=torch.float64)


def _grad_or_zeros(t: Tensor) -> Tensor:
    return t.grad if t.grad is not None else torch.zeros_like(t)


def _read_unrolled(tr: LayerTrace, gates: bool = True) -> LayerReadout:
    G = torch.stack([_grad_or_zeros(h) for h in tr.hs])  # (T, B, H) total ∂L/∂h_t
    dc = torch.stack([_grad_or_zeros(c) for c in tr.cs]) if tr.cs and gates else None
    stats = None
    if tr.gates is not None and gates:  # (T, B, G, H) activations
        center, band = _saturation_band(tr.layer.cell, tr.gates)
        stats = _gate_stats(tr.gates, center, band)
    return _readout(tr, G, dc, 1.0, stats, tr.out.detach())


# The fused read recomputes the gates from the kernel's outputs. tanh(a) = 2σ(2a) − 1 exactly,
# and on CPU PyTorch's sigmoid is ~3× cheaper than its tanh, so the tanh gate's rows of the
# weights are doubled (×2 is exact in floating point) and every gate goes through one sigmoid.
# The statistics are taken in that sigmoid space: |tanh| > 0.95 ⇔ |σ − 0.5| > 0.475.


def _read_fused(tr: LayerTrace, gates: bool = True) -> LayerReadout:
    layer, out = tr.layer, tr.out.detach()
    direct = _grad_or_zeros(tr.out)  # (T, B, H): what reaches h_t from the loss or the layer above
    through = tr.probe.grad if tr.probe.grad is not None else torch.zeros_like(tr.probe)
    if layer.cell == "rnn" or (layer.cell == "lstm" and not gates):
        return _readout(tr, _shift_add(direct, through), None, 1.0, None, out)

    T, B, H = out.shape
    I = tr.x.shape[-1]
    w_ih, w_hh, b_ih, b_hh = (w.detach() for w in layer.weights())
    tanh_gate = GATES[layer.cell].index("g" if layer.cell == "lstm" else "n")
    scale = torch.ones(w_ih.shape[0], 1, dtype=out.dtype, device=out.device)  # (G·H, 1)
    scale[tanh_gate * H:(tanh_gate + 1) * H] = 2.0
    center = 0.5
    band = torch.full((len(GATES[layer.cell]), 1), (SAT_SIGMOID[1] - SAT_SIGMOID[0]) / 2, dtype=out.dtype,
                      device=out.device)  # (G, 1)
    band[tanh_gate] = SAT_TANH / 2

    if layer.cell == "lstm":
        # [x_t, h_{t-1}] for every t, then all gate pre-activations in one matmul
        xh = _scratch("xh", (T, B, I + H), out)
        xh[..., :I] = tr.x
        xh[0, :, I:] = tr.h0.detach()
        xh[1:, :, I:] = out[:-1]
        w = torch.cat([w_ih, w_hh], 1) * scale  # (4H, I + H)
        s = _scratch("gates", (T, B, 4, H), out)
        torch.addmm((b_ih + b_hh) * scale[:, 0], xh.view(T * B, -1), w.T, out=s.view(T * B, 4 * H)).sigmoid_()
        stats = _gate_stats(s, center, band, tanh_gate)
        i, f, g, o = s.unbind(2)  # (T, B, H) views
        g.mul_(2).sub_(1)  # back to tanh
        Gh = _shift_add(direct, through)
        # c_t = f_t c_{t-1} + i_t g_t, then ∂L/∂c_t = ∂L/∂h_t o_t (1 − tanh² c_t) + f_{t+1} ∂L/∂c_{t+1},
        # with 1 − tanh² c = 4 σ(2c)(1 − σ(2c)): the factor 4 is applied to the norms (the scan is linear).
        c = linear_scan(f, i * g)  # (T, B, H)
        local = torch.ops.aten.sigmoid_backward(o * Gh, c.mul_(2).sigmoid_())  # o Gh σ(2c)(1 − σ(2c))
        dc = linear_scan(f, local, reverse=True)
        return _readout(tr, Gh, dc, 4.0, stats, out)

    # GRU: the probe gives W_hr^T δ_r + W_hz^T δ_z and δ_n of step t; ∂L/∂h_{t-1} also has the
    # direct path z_t ⊙ G_t. Doubling the n rows of both W_ih and W_hh doubles i_n + r ⊙ h_n.
    gi = _scratch("gates", (T, B, 3 * H), out)
    torch.addmm(b_ih * scale[:, 0], tr.x.reshape(T * B, -1), (w_ih * scale).T, out=gi.view(T * B, 3 * H))
    gh = _scratch("gh", (T, B, 3 * H), out)  # W_h· h_{t-1} + b_h·, n rows doubled
    w_hh2, b_hh2 = w_hh * scale, b_hh * scale[:, 0]
    torch.addmm(b_hh2, tr.h0.detach(), w_hh2.T, out=gh[0])
    torch.addmm(b_hh2, out[:-1].reshape(-1, H), w_hh2.T, out=gh[1:].view(-1, 3 * H))
    gi[..., :2 * H].add_(gh[..., :2 * H]).sigmoid_()  # r, z
    r, z = gi[..., :H], gi[..., H:2 * H]
    gi[..., 2 * H:].add_(gh[..., 2 * H:].mul_(r)).sigmoid_()  # σ(2(i_n + r ⊙ h_n)): n = 2σ − 1
    stats = _gate_stats(gi.view(T, B, 3, H), center, band, tanh_gate) if gates else None
    tv, r2d = through.view(T * B, 2 * H), gi.view(T * B, 3 * H)[:, :H]
    via = tv[:, :H].clone()  # (T·B, H): W_hr^T δ_r + W_hz^T δ_z
    via.addmm_(r2d * tv[:, H:], w_hh[2 * H:])  # + W_hn^T (r ⊙ δ_n)
    a = _shift_add(direct, via.view(T, B, H))
    Gh = linear_scan(z, a, reverse=True)  # G_{t-1} = a_{t-1} + z_t ⊙ G_t
    return _readout(tr, Gh, None, 1.0, stats, out)


def _gate_stats(vals: Tensor, center, band: Tensor, tanh_gate: int | None = None) -> tuple[Tensor, Tensor]:
    # vals (T, B, G, H) -> mean and saturated fraction, each (G, T). sum(3).sum(1) is ~2× faster than
    # mean((1, 3)) on CPU. With tanh_gate, that gate's values are σ(2a) and its mean is mapped back.
    T, B, G, H = vals.shape
    mean = vals.sum(3).sum(1).div_(B * H)  # (T, G)
    sat = torch.sub(vals, center, out=_scratch("sat", vals.shape, vals)).abs_().gt_(band).sum(3).sum(1).div_(B * H)
    if tanh_gate is not None:
        mean[:, tanh_gate].mul_(2).sub_(1)
    return mean.T, sat.T


def _shift_add(direct: Tensor, through: Tensor) -> Tensor:
    # ∂L/∂h_t = direct[t] + through[t+1], with through[T] = 0; one pass, a new tensor
    total = torch.empty_like(direct)
    torch.add(direct[:-1], through[1:], out=total[:-1])
    total[-1] = direct[-1]
    return total


def linear_scan(decay: Tensor, inp: Tensor, reverse: bool = False, parallel: bool | None = None) -> Tensor:
    """Solve the diagonal linear recurrence, (T, ...) tensors; `inp` may be overwritten.

    forward: s_0 = inp_0,         s_t = inp_t + decay_t ⊙ s_{t-1}
    reverse: s_{T-1} = inp_{T-1}, s_t = inp_t + decay_{t+1} ⊙ s_{t+1}

    On CPU a loop of one fused op per step (T small ops, no allocations) is fastest. On a GPU
    those would be T kernel launches, so there it is a log-depth Hillis-Steele scan:
    ⌈log2 T⌉ rounds of whole-tensor ops.
    """
    if parallel is None:
        parallel = inp.device.type != "cpu"
    if parallel:
        return _scan_parallel(decay, inp, reverse)
    s, d = inp.unbind(0), decay.unbind(0)  # unbind, not s[t]: views made once, O(T) not O(T²)
    T = len(s)
    if reverse:
        for t in range(T - 2, -1, -1):
            s[t].addcmul_(d[t + 1], s[t + 1])
    else:
        for t in range(1, T):
            s[t].addcmul_(d[t], s[t - 1])
    return inp


def _scan_parallel(decay: Tensor, inp: Tensor, reverse: bool) -> Tensor:
    if reverse:  # s'_u = inp'_u + decay'_u s'_{u-1} with u = T-1-t and decay'_u = decay_{t+1}
        return _scan_parallel(decay.flip(0).roll(1, 0), inp.flip(0), False).flip(0)
    s, d = inp, decay
    k, T = 1, inp.shape[0]
    while k < T:  # after this round, s_t holds the terms back to t-2k+1 and d_t their decay product
        s = torch.cat([s[:k], torch.addcmul(s[k:], d[k:], s[:-k])])
        if 2 * k < T:
            d = torch.cat([d[:k], d[k:] * d[:-k]])
        k *= 2
    return s


def _readout(tr: LayerTrace, Gh: Tensor, dc: Tensor | None, dc_scale: float, stats, out: Tensor) -> LayerReadout:
    # Gh, dc (T, B, H); stats: gate (mean, saturation), each (G, T). Reduce on the device, then one transfer.
    parts: dict[str, Tensor] = {"grad_h": _norms_t(Gh)}  # (T,)
    if dc is not None:
        parts["grad_c"] = _norms_t(dc).mul_(dc_scale)
    if stats is not None:
        parts["gate_mean"], parts["gate_saturation"] = stats
    hs = hidden_saturation_t(out, tr.layer)
    if hs is not None:
        parts["hidden_saturation"] = hs
    arrays = _to_host(parts)
    if hs is None:  # a linear RNN cannot saturate: NaN
        arrays["hidden_saturation"] = np.full(out.shape[0], np.nan)
    return LayerReadout(arrays["grad_h"], arrays.get("grad_c"), arrays.get("gate_mean"),
                        arrays.get("gate_saturation"), arrays["hidden_saturation"])


def _saturation_band(cell: str, gates: Tensor) -> tuple[Tensor, Tensor]:
    # A sigmoid gate is saturated outside [0.05, 0.95], i.e. |σ − 0.5| > 0.45; a tanh gate when |g| > 0.95.
    lo, hi = SAT_SIGMOID
    center = [0.0 if name in ("g", "n") else (lo + hi) / 2 for name in GATES[cell]]
    band = [SAT_TANH if name in ("g", "n") else (hi - lo) / 2 for name in GATES[cell]]
    as_t = lambda v: torch.tensor(v, dtype=gates.dtype, device=gates.device)[:, None]  # (G, 1)
    return as_t(center), as_t(band)


def _to_host(parts: dict[str, Tensor]) -> dict[str, np.ndarray]:
    # one float64 buffer, one device-to-host copy
    flat = torch.cat([p.reshape(-1).double() for p in parts.values()]).cpu().numpy()
    out, k = {}, 0
    for name, p in parts.items():
        out[name] = flat[k:k + p.numel()].reshape(tuple(p.shape))
        k += p.numel()
    return out


def hidden_saturation_t(out: Tensor, layer: RecurrentLayer) -> Tensor | None:
    """(T, B, H) -> (T,) fraction of saturated units, on the device: |h| > 0.95 for tanh-like states,
    sigmoid outside [0.05, 0.95], and for relu the dead fraction (h <= 0, no gradient passes).
    None for a linear RNN, which cannot saturate (recorded as NaN)."""
    act = layer.activation if layer.cell == "rnn" else "tanh"
    if act == "relu":
        return out.le(0).sum((1, 2)) / out[0].numel()
    if act == "sigmoid":
        return out.sub(sum(SAT_SIGMOID) / 2).abs_().gt_((SAT_SIGMOID[1] - SAT_SIGMOID[0]) / 2).mean((1, 2))
    if act == "linear":
        return None
    return out.abs().gt_(SAT_TANH).mean((1, 2))
