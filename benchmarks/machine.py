"""Shared by the benchmarks that report CPU speed: what the CPU computes with, and how a training step's measured
FLOP count compares with the cores' fp32 peak.

* :func:`isa_lines`: the CPU model, the ISA of torch's own kernels (``torch.backends.cpu.get_cpu_capability()``),
  the ISA oneDNN (convolutions) uses, read from ``ONEDNN_VERBOSE`` in a child process, the variables that cap them
  (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``, ``UNETKIT_CPU_BF16``) and whether bf16 is
  native (what ``amp: auto`` picks).
* :func:`train_step_flops`: forward and backward FLOPs of one training step of the real model and batch, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products; the loss, the normalisations and
  the optimizer step's elementwise work are not counted).
* :func:`fp32_peak`: cores × FMA units × fp32 lanes × 2 × GHz. Cores: those the process may run on
  (``os.sched_getaffinity``), at most torch's thread count; 2 FMA units (assumed); lanes from the vector ISA
  oneDNN uses (AVX-512 / AVX10-512: 16, but 8 on AMD Zen 4, which splits 512-bit operations in two; AVX / AVX2: 8;
  SSE: 4); GHz: the mean ``cpu MHz`` of ``/proc/cpuinfo``
  (a nominal clock: turbo and AVX-512 licence clocks differ) unless ``--peak-ghz`` gives it.
* :func:`densest_conv_gflops`: a measured ceiling beside that nominal one: the fp32 GFLOP/s of the densest
  convolution oneDNN runs here (3×3, 256 → 256 channels at 56², batch 8, channels_last, the best of a few calls),
  under the same ISA caps. Nominal peaks can mislead both ways (AMD Zen 4 runs AVX-512 on 256-bit units, and
  clocks vary); no network's convolutions run faster than this one.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from unetkit.models.numerics import Numerics, cpu_description, cpu_flags

FMA_UNITS = 2

_ONEDNN_PROBE = """
import torch
conv = torch.nn.Conv2d(16, 16, 3, padding=1)
with torch.no_grad():
    conv(torch.randn(16, 16, 16, 16))
"""


def onednn_isa() -> str:
    """The ISA oneDNN reports it uses (``ONEDNN_VERBOSE`` of a tiny convolution in a child process with this
    environment), e.g. ``Intel AVX2``; ``unknown`` when it says nothing."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "OMP_NUM_THREADS": "1"}
    try:
        out = subprocess.run(
            [sys.executable, "-c", _ONEDNN_PROBE], env=env, capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in (out.stdout + out.stderr).splitlines():
        if ",cpu,isa:" in line:
            return line.split(",cpu,isa:", 1)[1].strip()
    return "unknown"


def double_pumped_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """AMD Zen 4 (``AuthenticAMD``, family 25) runs a 512-bit FMA as two halves on 256-bit units."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    return "AuthenticAMD" in text and re.search(r"^cpu family\s*:\s*25\s*$", text, re.M) is not None


def fp32_lanes(onednn: str) -> tuple[int, str]:
    """(fp32 lanes, the ISA they come from): oneDNN's reported ISA, else the widest of the CPU flags. AVX-512 on
    a CPU that double-pumps it (:func:`double_pumped_avx512`) counts 8 lanes: the FMA rate of AVX2."""
    name = onednn.upper()
    if "AVX-512" in name or "AVX512" in name or re.search(r"AVX ?10", name):
        if double_pumped_avx512():
            return 8, f"{onednn}, on 256-bit units (AMD Zen 4)"
        return 16, onednn
    if "AVX" in name:
        return 8, onednn
    if "SSE" in name:
        return 4, onednn
    flags = cpu_flags()
    if {"avx512f", "avx512_f"} & flags:
        return 16, "avx512f (CPU flags)"
    if "avx2" in flags or "avx" in flags:
        return 8, "avx2 (CPU flags)"
    return 4, "SSE (assumed)"


def cpu_ghz(cpuinfo: Path = Path("/proc/cpuinfo")) -> float | None:
    """Mean ``cpu MHz`` of ``/proc/cpuinfo`` in GHz (None when unreadable)."""
    try:
        mhz = [
            float(line.split(":", 1)[1])
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("cpu MHz")
        ]
    except (OSError, ValueError):
        return None
    return sum(mhz) / len(mhz) / 1000 if mhz else None


@dataclass(frozen=True)
class Peak:
    """The cores' fp32 peak and what it assumes."""

    cores: int
    affinity: int
    threads: int
    lanes: int
    isa: str
    ghz: float
    ghz_from: str
    fma_units: int = FMA_UNITS

    @property
    def gflops(self) -> float:
        return self.cores * self.fma_units * self.lanes * 2 * self.ghz

    def assumptions(self) -> str:
        return (f"{self.cores} cores × {self.fma_units} FMA units (assumed) × {self.lanes} fp32 lanes ({self.isa}) "
                f"× 2 × {self.ghz:.2f} GHz ({self.ghz_from})")  # fmt: skip

    def line(self) -> str:
        return (f"fp32 peak: {self.gflops:.1f} GFLOP/s = {self.assumptions()}; cores = min(sched_getaffinity "
                f"{self.affinity}, torch threads {self.threads})")  # fmt: skip


def fp32_peak(onednn: str, ghz: float | None = None, threads: int | None = None) -> Peak:
    """The peak of the cores this process uses, lanes from ``onednn`` (:func:`onednn_isa`)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = threads or torch.get_num_threads()
    lanes, isa = fp32_lanes(onednn)
    if ghz is not None:
        ghz_from = "--peak-ghz"
    else:
        ghz, ghz_from = cpu_ghz(), "/proc/cpuinfo cpu MHz"
        if ghz is None:
            ghz, ghz_from = 2.0, "assumed: no /proc/cpuinfo cpu MHz; give --peak-ghz"
    return Peak(min(affinity, threads), affinity, threads, lanes, isa, ghz, ghz_from)


def densest_conv_gflops(calls: int = 6) -> float:
    """Measured fp32 GFLOP/s of the densest 3×3 convolution (see the module docstring), inference."""
    import time

    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(memory_format=torch.channels_last)
    x = torch.randn(8, 256, 56, 56).contiguous(memory_format=torch.channels_last)
    flops = 2 * 8 * 256 * 256 * 9 * 56 * 56
    best = float("inf")
    with torch.no_grad():
        conv(x)
        for _ in range(calls):
            started = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - started)
    return flops / best / 1e9


def add_peak_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--peak-ghz", type=float, help="clock for the fp32 peak (default: /proc/cpuinfo cpu MHz)")


def isa_lines(numerics_auto: str) -> tuple[list[str], str]:
    """(the lines describing the ISA torch and oneDNN use and bf16, the oneDNN ISA)."""
    d = cpu_description()
    onednn = onednn_isa()
    caps = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "UNETKIT_CPU_BF16")
    env = ", ".join(f"{name}={d['env'].get(name, '(unset)')}" for name in caps)
    if d["env"].get("MKL_ENABLE_INSTRUCTIONS"):
        env += f", MKL_ENABLE_INSTRUCTIONS={d['env']['MKL_ENABLE_INSTRUCTIONS']}"
    flags = ", ".join(d["bf16_flags"]) or "none"
    if "UNETKIT_CPU_BF16" in d["env"]:
        why = "set by UNETKIT_CPU_BF16"
    elif d["native_bf16"]:
        why = "the CPU has it and no cap rules it out"
    elif d["bf16_flags"]:
        why = "the CPU has it but the caps above rule it out: bf16 is emulated"
    else:
        why = "the CPU lacks it: bf16 is emulated"
    lines = [
        f"cpu: {d['cpu']}; torch ISA (get_cpu_capability): {d['torch_isa']}; oneDNN ISA: {onednn}",
        f"ISA caps: {env}",
        f"bf16: {'native' if d['native_bf16'] else 'not native'} ({why}; CPU bf16 flags: {flags}); "
        f"amp auto = {numerics_auto}",
    ]
    return lines, onednn


def train_step_flops(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, criterion, numerics: Numerics | None = None
) -> tuple[int, int]:
    """(forward, backward) FLOPs of one training step of ``model`` on the batch ``(x, y)``, as ``FlopCounterMode``
    counts them, on a copy of the model (the caller's gradients and statistics stay as they are). Counted in the
    numerics given (fp32 by default): the count does not depend on the dtype."""
    from torch.utils.flop_counter import FlopCounterMode

    numerics = numerics or Numerics(x.device.type)
    net = numerics.prepare_model(copy.deepcopy(model)).train()
    x = numerics.prepare_input(x)
    with FlopCounterMode(display=False) as forward:
        with numerics.autocast():
            out = net(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        loss = criterion(out.float(), y)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return forward.get_total_flops(), backward.get_total_flops()


def flops_line(forward: int, backward: int, batch: int) -> str:
    return (f"FLOPs per training step (FlopCounterMode, batch {batch}): forward {forward / 1e9:.2f} G + backward "
            f"{backward / 1e9:.2f} G (backward / forward {backward / max(forward, 1):.2f}) = "
            f"{(forward + backward) / batch / 1e9:.2f} GFLOP per image; the loss, normalisations and the "
            f"optimizer step are not counted")  # fmt: skip


def achieved(flops_per_image: float, images_per_s: float, peak: Peak | None) -> str:
    """``X GFLOP/s = Y % of the fp32 peak`` (no fraction without a CPU peak, e.g. on CUDA)."""
    gflops = flops_per_image * images_per_s / 1e9
    if peak is None:
        return f"{gflops:.1f} GFLOP/s"
    return (
        f"{gflops:.1f} GFLOP/s = {100 * gflops / peak.gflops:.1f}% of the {peak.gflops:.0f} GFLOP/s fp32 peak"
    )
