"""The memory allocator as a CPU candidate: glibc malloc against jemalloc (``LD_PRELOAD``), training and inference.

    .venv/bin/python benchmarks/allocator.py [--jemalloc PATH] [--pairs 5] [--avx2]

An allocator is chosen when a process starts, so each side runs in a fresh child process: the same training step
(`cpu_candidates.training_step`, ``amp auto``: unetkit's default numerics on this CPU) or inference batch, timed
after a warm-up. The pairs are interleaved (odd pairs run jemalloc first) and the ratio glibc ÷ jemalloc time is
printed as min / median / max: > 1 means jemalloc is faster. ``--avx2`` caps torch and oneDNN at AVX2
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``), as an AVX2-only CPU computes. The jemalloc found by
default is the one Ray's wheel ships (``ray/core/libjemalloc.so``); Debian's ``libjemalloc2`` works the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CHILD = """
import json, sys, time, types
sys.path.insert(0, {here!r})
import torch
from cpu_candidates import inference_batch, training_step
args = types.SimpleNamespace(channels=16, depth=4, side=128, batch=8, infer_batch=4)
fn = training_step("amp auto", args) if {what!r} == "train" else inference_batch("amp auto", args)
for _ in range(3):
    fn()
started = time.perf_counter()
for _ in range({steps}):
    fn()
print(json.dumps({{"seconds": (time.perf_counter() - started) / {steps}}}))
"""


def find_jemalloc() -> str | None:
    try:
        import ray

        path = Path(ray.__file__).parent / "core" / "libjemalloc.so"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    for path in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/libjemalloc.so.2"):
        if Path(path).exists():
            return path
    return None


def child_seconds(what: str, steps: int, preload: str | None, avx2: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = preload
    if avx2:
        env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
    code = CHILD.format(here=str(HERE), what=what, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--jemalloc", default=None, help="the jemalloc shared library (default: Ray's, else Debian's)"
    )
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per child after 3 warm-up steps")
    ap.add_argument("--avx2", action="store_true", help="cap torch and oneDNN at AVX2")
    args = ap.parse_args(argv)
    from ratios import interleaved_pairs, machine_line, spread

    lib = args.jemalloc or find_jemalloc()
    if not lib:
        raise SystemExit("allocator: no jemalloc found (give --jemalloc PATH)")
    print(machine_line())
    print(f"jemalloc: {lib}; caps: {'AVX2' if args.avx2 else 'none'}; U-Net 16 ch, depth 4, amp auto")
    for what in ("train", "infer"):
        pairs = interleaved_pairs(
            args.pairs,
            lambda _k, w=what: child_seconds(w, args.steps, None, args.avx2),
            lambda _k, w=what: child_seconds(w, args.steps, lib, args.avx2),
            verbose=False,
        )
        glibc = sorted(pairs.first)[len(pairs.first) // 2]
        jemalloc = sorted(pairs.second)[len(pairs.second) // 2]
        print(f"{what:5s}: glibc {glibc * 1e3:7.1f} ms, jemalloc {jemalloc * 1e3:7.1f} ms (medians); "
              f"glibc ÷ jemalloc {spread(pairs.ratios)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
