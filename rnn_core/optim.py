"""Update rules, learning-rate schedules and gradient clipping."""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import RunConfig

MOMENTUM = 0.9  # the classic heavy-ball value for `momentum`
STEP_MILESTONES = (0.5, 0.75)  # `step` schedule: ×0.1 at 50% and again at 75% of the post-warm-up steps
EXP_FINAL = 0.01  # `exponential` schedule: lr decays to 1% of its peak by the last step


def build_optimizer(cfg: RunConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    kw = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, **kw)
    if cfg.optimizer == "momentum":
        return torch.optim.SGD(params, momentum=MOMENTUM, **kw)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, **kw)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, **kw)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, **kw)
    return torch.optim.NAdam(params, **kw)


def lr_factor(cfg: RunConfig, step: int) -> float:
    """Multiplier of cfg.lr at `step` (0-based): linear warm-up, then the schedule over the remaining steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps - 1)  # the last step reaches the schedule's final value
    p = min(1.0, (step - cfg.warmup_steps) / span)  # progress through the schedule, 0..1
    if cfg.schedule == "step":
        return 0.1 ** sum(p >= m for m in STEP_MILESTONES)
    if cfg.schedule == "exponential":
        return EXP_FINAL ** p
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * p))
    return 1.0


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def param_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """(P,) float64 norm of each gradient, on its device: one fused call, no host sync.

    float64 so a vanished gradient does not underflow a float32 sum of squares to 0.
    """
    if not grads:
        return torch.zeros(0, dtype=torch.float64)
    return torch.stack(torch._foreach_norm(grads, 2, dtype=torch.float64))


def global_norm(grads: list[torch.Tensor]) -> float:
    """‖g‖ over all gradients, summed in float64 so tiny gradients do not underflow. One host sync."""
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(param_norms(grads)))


def clip_gradients(cfg: RunConfig, params: list[nn.Parameter], pre: float | None = None) -> tuple[float, float, bool]:
    """Clip in place. Returns (norm before, norm after, whether clipping changed anything).

    `pre`: the global norm if the caller already has it (the Trainer sums it from the group norms).

    Not torch.nn.utils.clip_grad_norm_: it sums in the gradients' float32 (a vanished gradient
    reads 0) and scales by clip / (norm + 1e-6), so its result is not exactly at the threshold.
    Each decision costs one host sync, however many parameters there are.
    """
    grads = [p.grad for p in params if p.grad is not None]
    pre = global_norm(grads) if pre is None else pre
    if cfg.clip <= 0 or not math.isfinite(pre):
        return pre, pre, False
    if cfg.clip_mode == "norm":
        fired = pre > cfg.clip
        if fired:  # rescale every gradient by the same factor: the direction is unchanged
            torch._foreach_mul_(grads, cfg.clip / pre)
    else:
        fired = bool(torch.stack(torch._foreach_norm(grads, math.inf)).max() > cfg.clip)  # largest |g|
        if fired:
            torch._foreach_clamp_min_(grads, -cfg.clip)
            torch._foreach_clamp_max_(grads, cfg.clip)
    return pre, global_norm(grads) if fired else pre, fired
