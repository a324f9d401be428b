"""Load benchmark of `unetkit serve`: requests/s and p50/p99 latency at several concurrencies,
with and without micro-batching, against a server it starts itself on 127.0.0.1.

    .venv/bin/python benchmarks/serve_load.py                       # small random-weight U-Net, CPU
    .venv/bin/python benchmarks/serve_load.py --model CHECKPOINT_DIR --image-size 512x512 --json out.json

Bounded: at most --requests requests and --max-time-s seconds per (mode, concurrency) cell.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from unetkit.serving.launch import serve_process

HOST = "127.0.0.1"  # never anything else
SETTINGS = {
    "micro-batching": ["--max-batch", "8", "--max-wait-ms", "5"],
    "no batching": ["--max-batch", "1", "--max-wait-ms", "0"],
}


def build_small_checkpoint(folder: Path, input_size: int) -> Path:
    """A random-weight 2-class `unet` (base 16, depth 3): throughput does not depend on training."""
    import torch

    from unetkit.models import create_model
    from unetkit.models.card import ClassMap, ModelCard, Preprocessing
    from unetkit.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    options = {"base_channels": 16, "depth": 3}
    model = create_model("unet", 2, in_channels=3, **options).eval()
    classes = [
        {"title": "bg", "shape": "bitmap", "color": "#000000", "geometry_config": {}},
        {"title": "fg", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}},
    ]
    card = ModelCard(
        model="unet",
        model_options=options,
        settings={"input_size": {"width": input_size, "height": input_size}},
        classes=ClassMap(out_classes=classes, class_title_to_idx={"bg": 0, "fg": 1}),
        preprocessing=Preprocessing(input_size=(input_size, input_size)),
    )
    return save_checkpoint(folder / "checkpoint", model, card)


@contextmanager
def server(model: Path, flags: list[str], threads: int, device: str):
    extra = ["--device", device, "--log-level", "warning", "--max-queue", "256", *flags]
    if threads:
        extra += ["--threads", str(threads)]
    with serve_process(model, *extra, host=HOST, startup_s=120) as url:
        yield url


async def measure(url: str, body: bytes, concurrency: int, total: int, max_time_s: float) -> dict:
    latencies: list[float] = []
    errors = 0
    issued = 0
    stop_at = time.monotonic() + max_time_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < total and time.monotonic() < stop_at:
                issued += 1
                t0 = time.perf_counter()
                r = await client.post("/v1/predict", files={"image": ("bench.png", body, "image/png")})
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat_ms = sorted(x * 1000 for x in latencies)
    return {
        "concurrency": concurrency,
        "requests": len(lat_ms),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(len(lat_ms) / elapsed, 2) if elapsed else 0.0,
        "p50_ms": round(statistics.median(lat_ms), 2) if lat_ms else None,
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 2) if lat_ms else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="checkpoint folder (default: a small random-weight U-Net)")
    ap.add_argument("--input-size", type=int, default=128, help="model input size of the default model")
    ap.add_argument("--image-size", default="256x256", help="WxH of the test image")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=200, help="requests per cell (upper bound)")
    ap.add_argument("--max-time-s", type=float, default=30.0, help="seconds per cell (upper bound)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads in the server (0 = default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)

    width, height = (int(v) for v in args.image_size.lower().split("x"))
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    body = buf.getvalue()
    levels = [int(c) for c in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory(prefix="unetkit-bench-") as tmp:
        model = args.model or build_small_checkpoint(Path(tmp), args.input_size)
        results = []
        for name, flags in SETTINGS.items():
            with server(model, flags, args.threads, args.device) as url:
                asyncio.run(measure(url, body, 2, 6, 30))  # warm-up
                for c in levels:
                    row = asyncio.run(measure(url, body, c, args.requests, args.max_time_s))
                    row["setting"] = name
                    results.append(row)
                    print(
                        f"{name:15s} c={c:<3d} {row['rps']:8.2f} req/s  p50 {row['p50_ms']:8.1f} ms  "
                        f"p99 {row['p99_ms']:8.1f} ms  ({row['requests']} ok, {row['errors']} errors, "
                        f"{row['seconds']} s)",
                        flush=True,
                    )
                stats = httpx.get(f"{url}/v1/model").json()["service"]["batching"]
                print(f"{name:15s} batches: {stats}", flush=True)
    meta = {
        "model": str(args.model) if args.model else f"unet base16 depth3, input {args.input_size}",
        "image": f"{width}x{height}",
        "cpu_count": os.cpu_count(),
        "device": args.device,
        "threads": args.threads,
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
