"""Cross-validation folds: disjoint, seeded validation sets that together cover every image once."""

from __future__ import annotations

import numpy as np

from unetkit.auto.plan import holdout_images


def make_folds(
    names: list[str], k: int, seed: int, holdout_fraction: float = 0.2
) -> list[dict[str, list[str]]]:
    """``k`` ≥ 2: k folds whose ``val`` parts partition ``names`` (sizes differ by at most one); ``k`` = 1: one
    held-out split with ``holdout_fraction`` of the images (at least one) for validation. Same seed, same folds."""
    names = sorted(names)
    if len(names) < 2:
        raise ValueError(f"cross-validation needs at least 2 images, got {len(names)}")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    if k <= 1:
        n_val = holdout_images(len(names), holdout_fraction)
        parts = [order[:n_val]]
    else:
        k = min(k, len(names))
        parts = [order[i::k] for i in range(k)]
    return [{"train": sorted(n for n in order if n not in set(val)), "val": sorted(val)} for val in parts]
