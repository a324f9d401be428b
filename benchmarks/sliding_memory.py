"""Peak memory of sliding-window inference over a very large image, measured in a fresh child process.

    .venv/bin/python benchmarks/sliding_memory.py [--size 10000] [--window 512] [--batch 0] [--amp auto]

The child builds a random `unet` checkpoint (base 16, input 256²), makes a SIZE×SIZE RGB image, runs the
`sliding_window` mode (Gaussian blend, 1/8 overlap) over it to a finished annotation, and reports its peak
resident set size (``ru_maxrss`` of the child: the image, the model, the stitching buffers and the bitmap labels
of the finished annotation) and a
hash of the class-index mask (identical hashes = identical masks). ``--batch 0`` = the mode's default windows
per forward pass on this device; several values (``--batch 0,8``) run one child each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(args) -> dict:
    import numpy as np
    import torch

    from unetkit.inference import Predictor, parse_config
    from unetkit.inference.modes import build_runner
    from unetkit.models import create_model
    from unetkit.models.card import ClassMap, ModelCard, Preprocessing
    from unetkit.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    options = {"base_channels": 16, "depth": 4}
    classes = [
        {"title": "vessel", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}, "hotkey": ""},
        {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
    ]
    card = ModelCard(
        model="unet", model_options=options, settings={"input_size": {"width": 256, "height": 256}},
        classes=ClassMap(out_classes=classes, class_title_to_idx={"bg": 0, "vessel": 1}),
        preprocessing=Preprocessing(input_size=(256, 256)),
    )  # fmt: skip
    n, win = args.size, args.window
    image = np.empty((n, n, 3), np.uint8)  # a textured image, made band by band (no int64 temporaries)
    xx = np.arange(n, dtype=np.int32)[None]
    for top in range(0, n, 256):
        yy = np.arange(top, min(top + 256, n), dtype=np.int32)[:, None]
        image[top : top + 256, :, 0] = (xx * 7 + yy * 3) % 251
        image[top : top + 256, :, 1] = ((xx ^ yy) * 5) % 253
        image[top : top + 256, :, 2] = ((xx // 64 + yy // 64) % 2) * 180
    model = create_model("unet", 2, **options).eval()
    with torch.no_grad():  # random weights, head bias centred so that both classes cover large areas
        x = torch.from_numpy(image[:256, :256].transpose(2, 0, 1).astype(np.float32) / 255.0)[None]
        logits = model(x)[0]
        model.outc.conv.bias[1] -= (logits[1] - logits[0]).median()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "ckpt", model, card)
        predictor = Predictor.from_checkpoint(ckpt, amp=args.amp)
    mode = {"name": "sliding_window", "window": {"width": win, "height": win},
            "min_overlap": {"x": win // 8, "y": win // 8}, "blend": "gaussian"}  # fmt: skip
    if args.batch:
        mode["batch_size"] = args.batch
    runner = build_runner(parse_config({"model": {}, "mode": mode}), None, predictor)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stitched = {}
    stitch = runner.stitch

    def keep(*a, **k):  # the mask's hash (before the labels take its buffer) and the peak so far
        out = stitch(*a, **k)
        stitched["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        stitched["sha1"] = hashlib.sha1(np.ascontiguousarray(out[0]).tobytes()).hexdigest()[:16]
        stitched["windows"] = len(out[2])
        return out

    runner.stitch = keep
    ann = runner.apply(image)
    seconds = time.perf_counter() - start
    return {
        "windows": stitched["windows"],
        "batch": args.batch or runner.window_batch(),
        "amp": predictor.backend.numerics.label,
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mib": round(before / 1024, 1),
        "rss_stitched_mib": round(stitched["rss"] / 1024, 1),
        "mask_sha1": stitched["sha1"],
        "labels": len(ann.labels),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--batch", default="0", help="windows per forward pass, comma-separated (0 = default)")
    ap.add_argument("--amp", default="auto", choices=["auto", "off", "bf16"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        args.batch = int(args.batch)
        print(json.dumps(child(args)))
        return 0
    from unetkit.models.numerics import cpu_description

    d = cpu_description()
    caps = ", ".join(f"{k}={v}" for k, v in d["env"].items()) or "no ISA caps"
    print(
        f"machine: {d['cpu']}, {os.cpu_count()} CPUs; torch ISA {d['torch_isa']}, {caps}; threads {args.threads}"
    )
    print(f"image {args.size}×{args.size}, window {args.window}, Gaussian blend, amp {args.amp}")
    for batch in args.batch.split(","):
        cmd = [sys.executable, __file__, "--child", "--size", str(args.size), "--window", str(args.window),
               "--batch", batch, "--amp", args.amp, "--threads", str(args.threads)]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"  batch {r['batch']}: {r['windows']} windows in {r['seconds']} s ({r['amp']}), peak RSS "
              f"{r['peak_rss_mib']} MiB ({r['peak_rss_mib'] / 1024:.2f} GiB; {r['rss_before_mib']} MiB before the "
              f"window loop, {r['rss_stitched_mib']} MiB after stitching), mask sha1 {r['mask_sha1']}, {r['labels']} labels")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
