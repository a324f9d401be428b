"""Shared by the benchmarks that report ratios: the machine line, interleaved pairs, min / median / max.

A ratio of two throughputs measured far apart on a shared machine mostly measures the machine's load. The
benchmarks therefore measure both sides in pairs, one right after the other (alternating which goes first),
compute one ratio per pair, and report the median with the spread.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(threads: int | None = None) -> str:
    """``machine: <cpu>, <n> logical CPUs, load <1-min load>; torch <version>, <threads> threads``."""
    import torch

    load = f", load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    threads = threads or torch.get_num_threads()
    return f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs{load}; torch {torch.__version__}, {threads} threads"


@dataclass
class Pairs:
    """Both sides of each pair and the per-pair ratios first / second."""

    first: list[float]
    second: list[float]

    @property
    def ratios(self) -> list[float]:
        return [a / b for a, b in zip(self.first, self.second)]


def interleaved_pairs(
    pairs: int, first: Callable[[int], float], second: Callable[[int], float], *, verbose: bool = True
) -> Pairs:
    """``pairs`` × (first(k), second(k)) measured back to back; odd pairs run ``second`` first."""
    out = Pairs([], [])
    for k in range(pairs):
        if k % 2:
            b = second(k)
            a = first(k)
        else:
            a = first(k)
            b = second(k)
        out.first.append(a)
        out.second.append(b)
        if verbose:
            print(f"  pair {k}: {a:.3f} / {b:.3f} = {a / b:.3f}", flush=True)
    return out


def spread(values: list[float]) -> str:
    """``min a / median b / max c`` of the values."""
    return f"min {min(values):.3f} / median {statistics.median(values):.3f} / max {max(values):.3f}"
