"""LR control: the original patience divider (docs/original-behaviour.md, "LR policy") and optional per-iteration
cosine/poly factors."""

from __future__ import annotations

import math


class LRPolicyWithPatience:
    """After each validation: if more than ``patience`` losses since the last reset and the best of the last
    ``patience`` is worse than the best overall, divide the LR (the caller then builds a new Adam)."""

    def __init__(self, lr: float, patience: int, lr_divisor: float):
        self.lr = lr
        self.patience = patience
        self.lr_divisor = lr_divisor
        self.history: list[float] = []
        self.last_reset_idx = 0

    def step(self, val_loss: float) -> bool:
        """Record a validation loss; True when the LR was decreased."""
        self.history.append(float(val_loss))
        if len(self.history) - self.last_reset_idx > self.patience:
            if min(self.history[-self.patience :]) > min(self.history):
                self.lr /= self.lr_divisor
                self.last_reset_idx = len(self.history)
                return True
        return False

    def state_dict(self) -> dict:
        return {"lr": self.lr, "history": list(self.history), "last_reset_idx": self.last_reset_idx}

    def load_state_dict(self, state: dict) -> None:
        self.lr = float(state["lr"])
        self.history = [float(x) for x in state["history"]]
        self.last_reset_idx = int(state["last_reset_idx"])


def decay_progress(
    iteration: int, total_iters: int, start: int, stretch_at: int = 0, stretch_from: float = 0.0
) -> float:
    """How far the decay has gone at ``iteration`` (0 at ``start``, 1 at ``total_iters``). A stretch re-anchors it:
    it reached ``stretch_from`` at ``stretch_at`` (at the pace of the length planned before) and goes on from there
    to 1 at the new ``total_iters``, so a run whose length changes midway keeps a continuous LR, and a re-run of
    its final length follows the schedule it ran, before the stretch point as after."""
    if stretch_at > start and iteration < stretch_at:
        t = stretch_from * (iteration - start) / (stretch_at - start)
    elif stretch_at > start:
        t = stretch_from + (1.0 - stretch_from) * (iteration - stretch_at) / max(1, total_iters - stretch_at)
    else:
        t = (iteration - start) / max(1, total_iters - start)
    return min(1.0, max(0.0, t))


def schedule_factor(
    name: str,
    iteration: int,
    total_iters: int,
    *,
    warmup_iters: int = 0,
    min_lr_ratio: float = 0.0,
    power: float = 0.9,
    hold_iters: int = 0,
    stretch_at: int = 0,
    stretch_from: float = 0.0,
) -> float:
    """Multiplier of the base LR at 0-based ``iteration`` (``none`` → 1, apart from the linear warm-up); the
    decay starts after the warm-up, or at ``hold_iters`` when that is later (the full LR is held until then);
    ``stretch_at`` / ``stretch_from``: see :func:`decay_progress`."""
    if warmup_iters and iteration < warmup_iters:
        return (iteration + 1) / warmup_iters
    start = max(warmup_iters, hold_iters)
    if name == "none" or iteration < start:
        return 1.0
    t = decay_progress(iteration, total_iters, start, stretch_at, stretch_from)
    if name == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * t))
    elif name == "poly":
        decay = (1.0 - t) ** power
    else:
        raise ValueError(f"unknown scheduler {name!r}")
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay
