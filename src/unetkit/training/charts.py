"""Training charts (loss / accuracy / dice against epoch, train and val) as one PNG, from metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unetkit import atomic

CHART_METRICS = ("loss", "accuracy", "dice")
MAX_TRAIN_POINTS = 1000


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file (a torn last line after a crash is ignored)."""
    out = []
    if not path.exists():
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _binned(x: list[float], y: list[float], max_points: int) -> tuple[np.ndarray, np.ndarray]:
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.size <= max_points:
        return xa, ya
    bins = np.array_split(np.arange(xa.size), max_points)
    return np.array([xa[b].mean() for b in bins]), np.array([np.nanmean(ya[b]) for b in bins])


def write_charts(records: list[dict], out_path: Path) -> Path | None:
    """Plot train (binned mean) and val curves of every metric present; atomic PNG write."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, tuple[list, list]]] = {}
    for rec in records:
        kind = rec.get("type")
        if kind not in ("train", "val"):
            continue
        for name, value in rec.get("metrics", {}).items():
            if name in CHART_METRICS and value is not None:
                xs, ys = series.setdefault(name, {}).setdefault(kind, ([], []))
                xs.append(rec["epoch"])
                ys.append(value)
    names = [n for n in CHART_METRICS if n in series]
    if not names:
        return None
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        for kind, style in (("train", dict(lw=1, alpha=0.8)), ("val", dict(marker="o", lw=1.5))):
            if kind in series[name]:
                xs, ys = series[name][kind]
                if kind == "train":
                    xs, ys = _binned(xs, ys, MAX_TRAIN_POINTS)
                ax.plot(xs, ys, label=kind, **style)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    try:
        return atomic.write_file(out_path, lambda fh: fig.savefig(fh, format="png", dpi=90))
    finally:
        plt.close(fig)
