"""Training throughput: end-to-end `unetkit.training.train` images/s on CHASE DB1 against the same model's pure
forward + loss + backward + Adam step on in-memory tensors of the same batch and size (the ceiling).

    .venv/bin/python benchmarks/train_throughput.py                      # small CPU setting (about 3 min)
    .venv/bin/python benchmarks/train_throughput.py --model unet_v2 --size 256 --batch 12 --amp bf16  # GPU

Each pair measures both sides back to back (alternating which goes first): the end-to-end side trains one run
and times its steady state (the epochs after the first, whose samples come from the in-memory cache; at least
``--steps`` steps), the ceiling side times as many steps on tensors in memory with the same numerics (amp mode,
channels_last). The ratio of each pair is end-to-end / ceiling; the median over the pairs is the figure (it
cannot honestly exceed 1 by more than the noise), printed with its min and max.

The output starts with the CPU, the ISA torch and oneDNN use, their caps (``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``), whether bf16 is native and the cores' fp32 peak (``benchmarks/machine.py``; ``--peak-ghz``
sets its clock), and ends with the achieved GFLOP/s of both sides (forward + backward + optimizer step; the FLOPs
are ``FlopCounterMode``'s count of one forward + backward of the model on a batch) as a fraction of that peak.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch
from machine import achieved, add_peak_arguments, flops_line, fp32_peak, isa_lines, train_step_flops
from ratios import interleaved_pairs, machine_line, spread

from unetkit.models import create_model
from unetkit.models.numerics import resolve_numerics
from unetkit.project.imports import import_masks
from unetkit.training import train
from unetkit.training.losses import build_criterion

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chasedb1"


def ceiling(model_name, options, size, batch, steps, device, amp) -> float:
    """images/s of forward + loss + backward + Adam step on tensors already in memory (``steps`` timed steps)."""
    torch.manual_seed(0)
    numerics = resolve_numerics(amp, device)
    model = numerics.prepare_model(create_model(model_name, 2, **options).to(device).train())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit, _ = build_criterion("auto", 2, 2)
    x = numerics.prepare_input(torch.randn(batch, 3, size, size, device=device))
    y = torch.randint(0, 2, (batch, size, size), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with numerics.autocast():
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


def step_flops(model_name, options, size, batch, device) -> tuple[int, int]:
    """(forward, backward) FLOPs of one training step of the model on a batch like the ceiling's."""
    torch.manual_seed(0)
    model = create_model(model_name, 2, **options).to(device)
    crit, _ = build_criterion("auto", 2, 2)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 2, (batch, size, size), device=device)
    return train_step_flops(model, x, y, crit)


def end_to_end(
    project_path: Path, cfg: dict, run_dir: Path, n_train: int, batch: int
) -> tuple[float, float, int]:
    """(epoch-1 images/s, steady-state images/s, steady steps) of one training run."""
    train(project_path, cfg, run_dir, progress=False)
    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    tr = [x for x in recs if x["type"] == "train"]
    ipe = len(tr) // cfg["epochs"]
    cold = n_train / tr[ipe - 1]["time"]
    steady_steps = len(tr) - ipe
    steady_images = n_train * (cfg["epochs"] - 1)
    steady = steady_images / (tr[-1]["time"] - tr[ipe - 1]["time"])
    shutil.rmtree(run_dir, ignore_errors=True)
    return cold, steady, steady_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CHASE DB1 folder (images + *_1stHO.png)")
    ap.add_argument("--model", default="unet")
    ap.add_argument("--options", default='{"base_channels": 16, "depth": 3}', help="model options (JSON)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=5, help="interleaved (end-to-end, ceiling) pairs (>= 5)")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per side of a pair (>= 50)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--amp", default="auto", choices=["auto", "off", "bf16", "fp16"])
    ap.add_argument("--gpu", type=int, default=0, help="CUDA id when CUDA is available")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    add_peak_arguments(ap)
    args = ap.parse_args()
    if args.pairs < 5 or args.steps < 50:
        ap.error("--pairs must be >= 5 and --steps >= 50 (fewer do not give a ratio to trust)")
    torch.set_num_threads(args.threads)
    options = json.loads(args.options)
    device = torch.device("cuda", args.gpu) if torch.cuda.is_available() else torch.device("cpu")
    warnings.simplefilter("ignore", UserWarning)
    numerics = resolve_numerics(args.amp, device)
    print(machine_line(args.threads))
    lines, onednn = isa_lines(resolve_numerics("auto", "cpu").label)
    peak = fp32_peak(onednn, args.peak_ghz, args.threads) if device.type == "cpu" else None
    for line in [*lines, *([peak.line()] if peak else [])]:
        print(line, flush=True)
    forward, backward = step_flops(args.model, options, args.size, args.batch, device)
    per_image = (forward + backward) / args.batch

    tmp = Path(tempfile.mkdtemp(prefix="unetkit-bench-"))
    try:
        project = import_masks(args.data, args.data, tmp / "chase", "vessel", tag="train")
        n_train = len(project)
        per_epoch = -(-n_train // args.batch)
        epochs = 1 + -(-args.steps // per_epoch)  # epoch 1 (cold) + enough steady epochs for --steps steps
        cfg = {
            "lr": 0.001, "epochs": epochs, "val_every": epochs,
            "batch_size": {"train": args.batch, "val": args.batch},
            "input_size": {"width": args.size, "height": args.size}, "gpu_devices": [args.gpu],
            "data_workers": {"train": args.workers, "val": 0},
            "dataset_tags": {"train": "train", "val": "train"},
            "unetkit": {"model": args.model, "model_options": options, "seed": 0, "amp": args.amp},
        }  # fmt: skip
        steady_steps = (epochs - 1) * per_epoch
        colds = []

        def e2e(k: int) -> float:
            cold, steady, _ = end_to_end(project.path, cfg, tmp / f"run{k}", n_train, args.batch)
            colds.append(cold)
            return steady

        def ceil(k: int) -> float:
            return ceiling(args.model, options, args.size, args.batch, steady_steps, device, args.amp)

        print(f"model {args.model} {options}, {args.size}×{args.size}, batch {args.batch}, {n_train} CHASE DB1 "
              f"images, amp {args.amp} ({numerics.label}), data_workers {args.workers}, device {device}; "
              f"{args.pairs} interleaved pairs of {steady_steps} steady steps (end-to-end / ceiling images/s)")  # fmt: skip
        pairs = interleaved_pairs(args.pairs, e2e, ceil)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    cold_ratios = [c / b for c, b in zip(colds, pairs.second)]
    med = statistics.median
    print(f"  end-to-end steady state (epochs 2..{epochs}): median {med(pairs.first):8.2f} images/s")
    print(f"  end-to-end epoch 1 (decode + rasterise + resize): median {med(colds):8.2f} images/s")
    print(f"  ceiling (forward+loss+backward+step in memory): median {med(pairs.second):8.2f} images/s")
    print(f"  ratio steady / ceiling: {spread(pairs.ratios)}")
    print(f"  ratio epoch 1 / ceiling: {spread(cold_ratios)}")
    print(f"  {flops_line(forward, backward, args.batch)}")
    print(f"  achieved, ceiling (median): {achieved(per_image, med(pairs.second), peak)}")
    print(f"  achieved, end-to-end steady state (median): {achieved(per_image, med(pairs.first), peak)}")


if __name__ == "__main__":
    main()
