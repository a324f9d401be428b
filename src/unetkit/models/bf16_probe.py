"""Whether bf16 autocast pays on a CPU that has AVX512-BF16 but no AMX: measured, not guessed from the flags.

The same ISA gives opposite answers on different cores. Measured with ``benchmarks/numerics.py`` and
``benchmarks/cpu_candidates.py`` (docs/benchmarks.md): bf16 + channels_last trained the 31 M U-Net at 0.82× fp32
on a 2-core Intel Xeon (family 6 model 207, avx512_bf16, no AMX) but at 2.06× on a 2-core AMD EPYC (Zen 4,
family 25 model 17), and ``auto``'s 16-channel U-Net at 2.19×. So on such CPUs ``amp: auto`` times a small
stack of U-Net stages (conv 3×3 + batch norm + ReLU at three widths, forward + backward, channels_last) in fp32
and in bf16, and chooses bf16 when it is at least :data:`MIN_GAIN` × faster. The answer is kept per CPU, torch
version and ISA caps in ``$XDG_CACHE_HOME/unetkit/bf16-gain.json`` (else ``~/.cache``), so a machine measures
once; ``UNETKIT_CPU_BF16`` = 1 / 0 still decides alone, without a probe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from unetkit.atomic import write_bytes

log = logging.getLogger("unetkit.numerics")

MIN_GAIN = 1.25  # a round margin over the timing noise of a 1-second probe; the CPUs measured gave 0.8 or ≥ 2
CACHE_FILE = "bf16-gain.json"
_ROUNDS, _STEPS = 3, 2


def probe_network() -> torch.nn.Module:
    """Three U-Net stages (16, 32 and 64 channels, halving the size between them), as auto's CPU network has."""
    layers: list[torch.nn.Module] = []
    width_in = 3
    for width in (16, 32, 64):
        if width_in != 3:
            layers.append(torch.nn.MaxPool2d(2))
        for _ in range(2):
            layers += [
                torch.nn.Conv2d(width_in, width, 3, padding=1),
                torch.nn.BatchNorm2d(width),
                torch.nn.ReLU(),
            ]
            width_in = width
    return torch.nn.Sequential(*layers, torch.nn.Conv2d(width_in, 2, 1))


def _step(net: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> Callable[[], None]:
    def step() -> None:
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = net(x)
        out.float().square().mean().backward()

    return step


def measure_bf16_gain(side: int = 64, batch: int = 4) -> float:
    """fp32 seconds ÷ bf16 seconds of a training step of :func:`probe_network` (both channels_last), interleaved
    over a few rounds; the median of the per-round ratios."""
    torch.manual_seed(0)
    x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)
    steps = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        net = probe_network().to(memory_format=torch.channels_last)
        steps[name] = _step(net, x, dtype)
        steps[name]()  # warm-up: oneDNN builds its kernels
    ratios = []
    for _ in range(_ROUNDS):
        seconds = {}
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(_STEPS):
                step()
            seconds[name] = time.perf_counter() - start
        ratios.append(seconds["fp32"] / seconds["bf16"])
    return statistics.median(ratios)


def cache_key(env: Mapping[str, str], flags: Iterable[str], model: str) -> str:
    """What the answer depends on: the CPU (model name and flags), torch, its threads and the ISA caps."""
    caps = "|".join(f"{name}={env.get(name, '')}" for name in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
                                                               "DNNL_MAX_CPU_ISA"))  # fmt: skip
    text = f"{model}|{','.join(sorted(flags))}|{torch.__version__}|{torch.get_num_threads()}|{caps}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "unetkit" / CACHE_FILE


def bf16_gain(
    env: Mapping[str, str], flags: Iterable[str], model: str, measure: Callable[[], float] = measure_bf16_gain
) -> float:
    """The measured gain for this CPU: from the cache when it holds this machine's key, else ``measure()`` (and
    the cache is updated atomically; a cache that cannot be read or written is only measured around)."""
    key, path = cache_key(env, flags, model), cache_path(env)
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("gain"), (int, float)):
        return float(entry["gain"])
    gain = float(measure())
    log.info("bf16 probe on %s: %.2f× fp32 (%s)", model, gain, "bf16" if gain >= MIN_GAIN else "fp32")
    known[key] = {"gain": round(gain, 3), "cpu": model, "torch": torch.__version__}
    try:
        write_bytes(path, (json.dumps(known, indent=1) + "\n").encode())
    except OSError as exc:
        log.debug("bf16 probe cache not written: %s", exc)
    return gain
