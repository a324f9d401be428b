"""Training throughput: end-to-end `unetkit.training.train` images/s on CHASE DB1 against the same model's pure
forward + loss + backward + Adam step on in-memory tensors of the same batch and size (the ceiling).

    .venv/bin/python benchmarks/train_throughput.py                      # small CPU setting (< 3 min)
    .venv/bin/python benchmarks/train_throughput.py --model unet_v2 --size 256 --batch 12 --epochs 3  # GPU

Steady state = epochs after the first (decoded, resized samples come from the in-memory cache); the first
epoch also decodes the 999×960 JPEGs and rasterises the masks. The ratio printed is steady-state / ceiling.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch

from unetkit.models import create_model
from unetkit.project.imports import import_masks
from unetkit.training import train
from unetkit.training.losses import build_criterion

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chasedb1"


def ceiling(model_name, options, size, batch, steps, device, amp) -> float:
    """images/s of forward + loss + backward + Adam step on tensors already in memory."""
    torch.manual_seed(0)
    model = create_model(model_name, 2, **options).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit, _ = build_criterion("auto", 2, 2)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch, size, size), device=device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        loss = crit(out.float(), y)
        loss.backward()
        loss.item()  # the training loop also reads the loss every step
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CHASE DB1 folder (images + *_1stHO.png)")
    ap.add_argument("--model", default="unet")
    ap.add_argument("--options", default='{"base_channels": 16, "depth": 3}', help="model options (JSON)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument(
        "--repeats", type=int, default=2, help="interleaved repetitions; the best of each is kept"
    )
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    ap.add_argument("--gpu", type=int, default=0, help="CUDA id when CUDA is available")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    options = json.loads(args.options)
    device = torch.device("cuda", args.gpu) if torch.cuda.is_available() else torch.device("cpu")
    warnings.simplefilter("ignore", UserWarning)

    tmp = Path(tempfile.mkdtemp(prefix="unetkit-bench-"))
    runs = []
    try:
        project = import_masks(args.data, args.data, tmp / "chase", "vessel", tag="train")
        n_train = len(project)
        cfg = {
            "lr": 0.001, "epochs": args.epochs, "val_every": args.epochs,
            "batch_size": {"train": args.batch, "val": args.batch},
            "input_size": {"width": args.size, "height": args.size}, "gpu_devices": [args.gpu],
            "data_workers": {"train": args.workers, "val": 0},
            "dataset_tags": {"train": "train", "val": "train"},
            "unetkit": {"model": args.model, "model_options": options, "seed": 0, "amp": args.amp},
        }  # fmt: skip
        steps = max(5, min(50, (args.epochs - 1) * -(-n_train // args.batch)))
        for r in range(args.repeats):  # interleaved, best of each: robust on a shared machine
            ceil = ceiling(args.model, options, args.size, args.batch, steps, device, args.amp)
            train(project.path, cfg, tmp / f"run{r}", progress=False)
            recs = [json.loads(x) for x in (tmp / f"run{r}" / "metrics.jsonl").read_text().splitlines()]
            tr = [x for x in recs if x["type"] == "train"]
            ipe = len(tr) // args.epochs
            cold = n_train / tr[ipe - 1]["time"]
            steady = n_train * (args.epochs - 1) / (tr[-1]["time"] - tr[ipe - 1]["time"])
            runs.append((cold, steady, ceil))
            print(f"run {r}: epoch 1 {cold:.2f}, steady {steady:.2f}, ceiling {ceil:.2f} images/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cold, steady, ceil = (max(v) for v in zip(*runs))
    print(f"\ndevice {device} ({torch.get_num_threads()} threads), model {args.model} {options}, "
          f"{args.size}×{args.size}, batch {args.batch}, {n_train} CHASE DB1 images, amp {args.amp}, "
          f"data_workers {args.workers}, best of {args.repeats}")  # fmt: skip
    print(f"  end-to-end training, epoch 1 (decode + rasterise + resize): {cold:8.2f} images/s")
    print(f"  end-to-end training, epochs 2..{args.epochs} (steady state):      {steady:8.2f} images/s")
    print(f"  pure forward+loss+backward+step on in-memory tensors:   {ceil:8.2f} images/s")
    print(f"  ratio steady / ceiling: {steady / ceil:.3f}   (epoch 1 / ceiling: {cold / ceil:.3f})")


if __name__ == "__main__":
    main()
