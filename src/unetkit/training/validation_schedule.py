"""When to validate: after each iteration, at most one validation if floor(e/val_every + 1e-9) > done.

Original behaviour: docs/original-behaviour.md, "ValidationSchedule".
"""

from __future__ import annotations

import math


class ValidationSchedule:
    def __init__(self, epochs: int, val_every: float):
        self.epochs = epochs
        self.val_every = val_every
        self.performed = 0

    def required(self, epoch_flt: float) -> int:
        return math.floor(epoch_flt / self.val_every + 1e-9)

    def need_validation(self, epoch_flt: float) -> bool:
        return self.required(epoch_flt) > self.performed

    def validation_performed(self) -> None:
        self.performed += 1

    def state_dict(self) -> dict:
        return {"performed": self.performed}

    def load_state_dict(self, state: dict) -> None:
        self.performed = int(state["performed"])


def validation_iterations(epochs: int, iters_per_epoch: int, val_every: float) -> list[int]:
    """Global (1-based) iteration numbers after which validation runs, for a whole training."""
    planner = ValidationSchedule(epochs, val_every)
    out = []
    for epoch in range(epochs):
        for it in range(iters_per_epoch):
            if planner.need_validation(epoch + (it + 1) / iters_per_epoch):
                planner.validation_performed()
                out.append(epoch * iters_per_epoch + it + 1)
    return out
