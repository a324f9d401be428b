"""Model-zoo benchmark: parameters, GMACs, forward and forward+backward throughput, peak memory.

    .venv/bin/python benchmarks/models.py                      # every model, CPU, 256×256, batch 2
    .venv/bin/python benchmarks/models.py --device cuda --amp  # GPU, bf16 autocast (--amp-dtype float16)
    .venv/bin/python benchmarks/models.py --models unet,u2netp --iters 5 --json out.json

Each model runs in its own subprocess so that the peak resident memory (CPU, ``ru_maxrss``) belongs to that
model alone; on CUDA the peak is ``torch.cuda.max_memory_allocated``. MACs = FLOPs / 2 from
``torch.utils.flop_counter.FlopCounterMode`` for one image in eval mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def measure(name: str, args) -> dict:
    """Benchmark one model in this process."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from unetkit.models import create_model
    from unetkit.models.blocks import count_parameters

    torch.manual_seed(0)
    device = args.device
    model = create_model(name, args.classes).to(device)
    params = count_parameters(model)
    size, batch = args.size, args.batch
    x1 = torch.randn(1, 3, size, size, device=device)
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x1)
    gmacs = counter.get_total_flops() / 2 / 1e9
    amp_dtype = torch.float16 if args.amp_dtype == "float16" else torch.bfloat16
    amp = torch.autocast(device.split(":")[0], dtype=amp_dtype, enabled=args.amp)
    x = torch.randn(batch, 3, size, size, device=device)
    base_rss = _rss_mib()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def forward():
        with torch.no_grad(), amp:
            model(x)

    def train_step():
        with amp:
            out = model(x)
        outs = out if isinstance(out, tuple) else (out,)
        loss = sum(o.float().mean() for o in outs)
        loss.backward()
        model.zero_grad(set_to_none=True)

    results = {"model": name, "params": params, "gmacs": round(gmacs, 2)}
    for label, fn, mode in (("fwd", forward, model.eval), ("fwd_bwd", train_step, model.train)):
        mode()
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.iters):  # median of single iterations: robust to load spikes on shared machines
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
        results[f"{label}_img_s"] = round(batch / statistics.median(times), 2)
    if device.startswith("cuda"):
        results["peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        results["peak_mib"] = round(_rss_mib(), 1)
        results["peak_delta_mib"] = round(_rss_mib() - base_rss, 1)
    return results


def _table(rows: list[dict], device: str) -> str:
    mem = "peak MiB (GPU)" if device.startswith("cuda") else "peak RSS MiB (+ over setup)"
    head = f"| model | params | GMACs@{ARGS.size}² | fwd img/s | fwd+bwd img/s | {mem} |"
    lines = [head, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} | | | | |")
            continue
        memory = f"{r['peak_mib']:.0f}" + (f" (+{r['peak_delta_mib']:.0f})" if "peak_delta_mib" in r else "")
        lines.append(
            f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['gmacs']:.1f} | {r['fwd_img_s']:.2f} | "
            f"{r['fwd_bwd_img_s']:.2f} | {memory} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--models", default="", help="comma-separated names (default: all registered)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="run under torch.autocast")
    parser.add_argument("--amp-dtype", choices=("bfloat16", "float16"), default="bfloat16")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    ARGS = args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return 0

    from unetkit.models import list_models

    names = [n for n in args.models.split(",") if n] or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        parser.error(f"unknown models: {', '.join(unknown)}")
    import torch

    print(
        f"# device={args.device} size={args.size} batch={args.batch} iters={args.iters} amp={args.amp and args.amp_dtype} "
        f"torch={torch.__version__} threads={torch.get_num_threads()} cpu={platform.processor() or platform.machine()} "
        f"cores={os.cpu_count()}",
        flush=True,
    )
    rows = []
    forwarded = [a for a in (argv if argv is not None else sys.argv[1:])]
    for name in names:
        proc = subprocess.run(
            [sys.executable, __file__, *forwarded, "--worker", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            rows.append({"model": name, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:120]})
        else:
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  {name}: {rows[-1]}", flush=True)
    print(_table(rows, args.device))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0


ARGS: argparse.Namespace

if __name__ == "__main__":
    raise SystemExit(main())
