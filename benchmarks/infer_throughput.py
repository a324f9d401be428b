"""Inference benchmark: project throughput vs the model's pure forward, sliding window on a large image,
PyTorch vs ONNX Runtime latency.

    .venv/bin/python benchmarks/infer_throughput.py [--model unet --base-channels 16 --depth 4] [--images 16]
        [--size 512] [--input 256] [--batch-size 4] [--big 4096] [--device cpu] [--json out.json]

The model has random weights (throughput does not depend on them). Project images are CHASE DB1 photos from
../shared/data when present (resized to --size), else synthetic. Figures are printed as a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from unetkit.inference import InferenceConfig, Predictor, parse_config
from unetkit.inference.batch import infer_project
from unetkit.inference.export import export_onnx
from unetkit.inference.modes import build_runner
from unetkit.models import create_model
from unetkit.models.card import ClassMap, ModelCard, Preprocessing
from unetkit.models.checkpoint import save_checkpoint
from unetkit.project import Annotation, ObjClass, ProjectMeta, ProjectWriter

ROOT = Path(__file__).resolve().parents[1]
CHASE = ROOT.parent / "shared" / "data" / "chasedb1"
OUT_CLASSES = [
    {"title": "vessel", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}, "hotkey": ""},
    {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
]


def make_checkpoint(path: Path, args) -> Path:
    torch.manual_seed(0)
    options = {}
    if args.model == "unet":
        options = {"base_channels": args.base_channels, "depth": args.depth}
    model = create_model(args.model, 2, **options)
    settings = {"input_size": {"width": args.input, "height": args.input}}
    card = ModelCard(
        model=args.model, model_options=options, settings=settings,
        classes=ClassMap(out_classes=OUT_CLASSES, class_title_to_idx={"bg": 0, "vessel": 1}),
        preprocessing=Preprocessing(input_size=(args.input, args.input)),
    )  # fmt: skip
    return save_checkpoint(path, model, card)


def make_project(path: Path, n: int, size: int) -> Path:
    import cv2

    from unetkit.project import read_image

    sources = sorted(CHASE.glob("Image_*.jpg")) if CHASE.is_dir() else []
    writer = ProjectWriter(path, ProjectMeta([ObjClass("vessel", "bitmap", "#FF0000")]))
    rng = np.random.default_rng(0)
    for i in range(n):
        if sources:
            img = cv2.resize(
                read_image(sources[i % len(sources)]), (size, size), interpolation=cv2.INTER_AREA
            )
        else:
            img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        writer.add_item("ds0", f"img_{i:03d}.jpg", img, Annotation(size, size))
    return path


def median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="unet")
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=512, help="project image side")
    ap.add_argument("--input", type=int, default=256, help="model input side")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--big", type=int, default=4096, help="side of the sliding-window image (0 = skip)")
    ap.add_argument("--window", type=int, default=512, help="sliding window side")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads for torch and ONNX Runtime (0 = library default)",
    )
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict = {
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device}
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = make_checkpoint(tmp / "ckpt", args)
        predictor = Predictor.from_checkpoint(ckpt, device=args.device)
        results["model"] = {"name": args.model, "input": args.input,
                            "params": sum(p.numel() for p in predictor.backend.model.parameters())}  # fmt: skip

        # 1. project inference vs pure forward on the same batch
        project = make_project(tmp / "proj", args.images, args.size)
        t0 = time.perf_counter()
        stats = infer_project(predictor, project, tmp / "out", InferenceConfig(), workers=args.workers,
                              batch_size=args.batch_size, progress=False)  # fmt: skip
        wall = time.perf_counter() - t0
        x = (
            np.random.default_rng(0)
            .standard_normal((args.batch_size, 3, args.input, args.input))
            .astype(np.float32)
        )
        fwd = median_time(lambda: predictor.backend.probabilities(x), args.repeat)
        results["project"] = {
            "images": stats.images, "image_size": args.size, "batch_size": args.batch_size,
            "images_per_s": round(stats.images / wall, 2), "wall_s": round(wall, 2),
            "pure_forward_images_per_s": round(args.batch_size / fwd, 2),
            "efficiency": round((stats.images / wall) / (args.batch_size / fwd), 3),
        }  # fmt: skip

        # 2. sliding window on a big image
        if args.big:
            n = args.big
            image = np.zeros((n, n, 3), np.uint8)
            image[::7] = 200
            image[:, ::11] = 90
            mode = build_runner(parse_config({"model": {}, "mode": {
                "name": "sliding_window", "window": {"width": args.window, "height": args.window},
                "min_overlap": {"x": args.window // 8, "y": args.window // 8}, "blend": "gaussian",
                "batch_size": args.batch_size}}), None, predictor)  # fmt: skip
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            tracemalloc.start()
            t0 = time.perf_counter()
            ann = mode.apply(image)
            dt = time.perf_counter() - t0
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            windows = len(mode.grid(n, n))
            results["sliding_window"] = {
                "image": f"{n}x{n}", "window": args.window, "windows": windows, "seconds": round(dt, 2),
                "numpy_peak_mb": round(peak / 1e6, 1), "maxrss_growth_mb": round((rss1 - rss0) / 1e3, 1),
                "naive_float32_accumulator_mb": round(n * n * 2 * 4 / 1e6, 1),
                "labels": len(ann.labels),
            }  # fmt: skip

        # 3. PyTorch vs ONNX Runtime latency (batch 1 at the input size)
        onnx_path = export_onnx(ckpt, tmp / "model.onnx")
        ort = Predictor.from_onnx(onnx_path, threads=args.threads or None)
        x1 = x[:1]
        lat_t = median_time(lambda: predictor.backend.logits(x1), args.repeat * 2)
        lat_o = median_time(lambda: ort.backend.logits(x1), args.repeat * 2)
        diff = float(np.abs(predictor.backend.logits(x1) - ort.backend.logits(x1)).max())
        results["latency_ms"] = {"torch": round(lat_t * 1e3, 2), "onnxruntime": round(lat_o * 1e3, 2),
                                 "max_logit_diff": diff}  # fmt: skip

    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
