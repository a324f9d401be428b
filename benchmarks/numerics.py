"""Numerics benchmark: training and inference images/s of `unet` (31 M) and `unet_v2` in fp32, bf16,
bf16 + channels_last and compiled (bf16 + channels_last + torch.compile), as ratios to fp32 measured in one run;
the bf16-versus-fp32 accuracy check; and training the 31 M U-Net against milesial/Pytorch-UNet's fp32 `train.py`.

    .venv/bin/python benchmarks/numerics.py --models unet@128 [--rounds 3] [--steps 2] [--batch 2]
    .venv/bin/python benchmarks/numerics.py --models none --accuracy                 # the accuracy check only
    .venv/bin/python benchmarks/numerics.py --models none --milesial /path/to/Pytorch-UNet   # a checkout

Speed: every mode has its own copy of the same initial weights; each round measures every mode (``--steps``
training steps of forward + loss + backward + Adam, then ``--steps`` inference batches), rotating the order, and
gives one ratio per mode to that round's fp32; the median over the rounds is printed with min and max. On CUDA the
modes are fp32 and AMP (bf16 where supported, else fp16).

Accuracy: :data:`unetkit.training.amp_parity.QUICK_RECIPE` on CHASE DB1 at half size, trained in fp32 and bf16;
validation Dice of the vessel class (target: within 0.005).

milesial: its `train.py` runs unchanged in a child process (its optional imports `wandb`, `tqdm` and the unused
`torchvision` are stand-ins that record the progress updates), on the same CHASE DB1 images resized to
``--milesial-size``² (scale 1, no validation split), batch ``--batch``, its defaults otherwise (fp32, RMSprop,
2 loader workers); unetkit trains the same 31 M U-Net on the same files with its defaults (``amp: auto``). Both
rates are images/s after the first step; the pairs are interleaved.

The output starts with the CPU, the ISA torch and oneDNN use, their caps (``ATEN_CPU_CAPABILITY``,
``ONEDNN_MAX_CPU_ISA``) and whether bf16 is native, and the cores' fp32 peak (``benchmarks/machine.py``); each model
then gets its FLOPs per training step (``FlopCounterMode`` on one forward + backward of the model and batch) and
each mode's achieved training GFLOP/s (forward + backward + optimizer step) as a fraction of that peak. Set
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` to measure like an AVX2 CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from machine import achieved, add_peak_arguments, flops_line, fp32_peak, isa_lines, train_step_flops
from ratios import interleaved_pairs, machine_line, spread

from unetkit.models import create_model
from unetkit.models.numerics import Numerics, compile_module, cpu_native_bf16, resolve_numerics
from unetkit.training.losses import build_criterion

CHASE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "chasedb1"


class Contender:
    """One mode of one model: its own model copy, optimizer and (maybe compiled) network."""

    def __init__(
        self, name: str, model: torch.nn.Module, numerics: Numerics, compiled: bool, batch: int, size: int
    ):
        self.name, self.numerics = name, numerics
        self.model = numerics.prepare_model(copy.deepcopy(model))
        self.net = compile_module(self.model) if compiled else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.crit, _ = build_criterion("auto", 2, 2)
        gen = torch.Generator().manual_seed(0)
        self.x = numerics.prepare_input(torch.randn(batch, 3, size, size, generator=gen))
        self.y = torch.randint(0, 2, (batch, size, size), generator=gen)
        start = time.perf_counter()
        self.train_step()
        self.infer_step()
        self.warmup_s = time.perf_counter() - start

    def train_step(self) -> None:
        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        with self.numerics.autocast():
            out = self.net(self.x)
        out = out[0] if isinstance(out, (tuple, list)) else out
        loss = self.crit(out.float(), self.y)
        loss.backward()
        loss.item()
        self.opt.step()

    def infer_step(self) -> None:
        self.model.eval()
        with torch.inference_mode(), self.numerics.autocast():
            out = self.net(self.x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            torch.softmax(out.float(), dim=1)

    def rate(self, fn, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        return steps * self.x.shape[0] / (time.perf_counter() - start)


def contenders(
    model_name: str, size: int, batch: int, device: torch.device, compiled: bool
) -> list[Contender]:
    torch.manual_seed(0)
    model = create_model(model_name, 2)
    if device.type == "cuda":
        model = model.to(device)
        modes = [("fp32", Numerics("cuda"), False), ("amp", resolve_numerics("auto", device), False)]
    else:
        bf16 = torch.bfloat16
        modes = [
            ("fp32", Numerics("cpu"), False),
            ("fp32+channels_last", Numerics("cpu", channels_last=True), False),
        ]
        if cpu_native_bf16():  # emulated bf16 is 14-38x slower than fp32: not worth the minutes
            modes += [
                ("bf16", Numerics("cpu", bf16), False),
                ("bf16+channels_last", Numerics("cpu", bf16, channels_last=True), False),
            ]
        if compiled:
            modes.append(("compiled", resolve_numerics("auto", device), True))
    out = []
    for name, numerics, comp in modes:
        c = Contender(name, model, numerics, comp, batch, size)
        if comp and c.net.failed:
            print(f"  {name}: torch.compile failed, left out")
            continue
        print(f"  {name}: ready (first step + batch {c.warmup_s:.1f} s)", flush=True)
        out.append(c)
    return out


def speed(model_name: str, size: int, args, device, peak=None) -> dict:
    params = sum(p.numel() for p in create_model(model_name, 2).parameters()) / 1e6
    print(f"\n{model_name} ({params:.1f} M) at {size}², batch {args.batch}, {args.steps} steps per measurement, "
          f"{args.rounds} rounds")  # fmt: skip
    runners = contenders(model_name, size, args.batch, device, args.compile)
    rates = {c.name: {"train": [], "infer": []} for c in runners}
    for r in range(args.rounds):
        k = r % len(runners)
        for c in runners[k:] + runners[:k]:  # rotate the order each round
            rates[c.name]["train"].append(c.rate(c.train_step, args.steps))
            rates[c.name]["infer"].append(c.rate(c.infer_step, args.steps))
    result = {}
    print(f"  {'mode':<20}{'train img/s':>12}{'infer img/s':>12}   ratio to fp32: train | inference")
    for c in runners:
        row = {}
        for kind in ("train", "infer"):
            ratios = [a / b for a, b in zip(rates[c.name][kind], rates["fp32"][kind])]
            row[kind] = {"median_img_s": statistics.median(rates[c.name][kind]), "ratios": ratios}
        print(f"  {c.name:<20}{row['train']['median_img_s']:>12.2f}{row['infer']['median_img_s']:>12.2f}   "
              f"{spread(row['train']['ratios'])} | {spread(row['infer']['ratios'])}")  # fmt: skip
        result[c.name] = row
    fp32 = runners[0]
    forward, backward = train_step_flops(fp32.model, fp32.x, fp32.y, fp32.crit)
    per_image = (forward + backward) / args.batch
    print(f"  {flops_line(forward, backward, args.batch)}")
    print("  training (forward + backward + optimizer step), achieved:")
    for c in runners:
        result[c.name]["train"]["gflop_s"] = per_image * result[c.name]["train"]["median_img_s"] / 1e9
        print(f"    {c.name:<20}{achieved(per_image, result[c.name]['train']['median_img_s'], peak)}")
    result["flops"] = {"forward": forward, "backward": backward, "per_image": per_image}
    return result


def accuracy() -> dict:
    from unetkit.training.amp_parity import QUICK_RECIPE, amp_parity, downscaled_project

    with tempfile.TemporaryDirectory(prefix="unetkit-parity-") as tmp:
        project = downscaled_project(CHASE, Path(tmp) / "chase")
        res = amp_parity(project.path, QUICK_RECIPE, Path(tmp) / "runs", modes=("off", "bf16"))
    dice = {m: res[m]["metrics"]["dice/vessel"] for m in res}
    print(f"\naccuracy (CHASE DB1 at half size, QUICK_RECIPE): validation Dice fp32 {dice['off']:.4f} "
          f"({res['off']['seconds']:.0f} s), bf16 {dice['bf16']:.4f} ({res['bf16']['numerics']}, "
          f"{res['bf16']['seconds']:.0f} s); |difference| {abs(dice['off'] - dice['bf16']):.4f} (target <= 0.005)")  # fmt: skip
    return {"dice": dice, "seconds": {m: res[m]["seconds"] for m in res}}


# --------------------------------------------------------------------------------------------- milesial
_STANDINS = r"""
import json, sys, time, types
stamps = []
class tqdm:
    def __init__(self, iterable=None, *a, **k): self.iterable = iterable
    def __iter__(self): return iter(self.iterable)
    def __enter__(self): return self
    def __exit__(self, *a): return False
    def update(self, n=1): stamps.append((time.perf_counter(), n))
    def set_postfix(self, *a, **k): pass
    def close(self): pass
class _Run:
    config = types.SimpleNamespace(update=lambda *a, **k: None)
    def log(self, *a, **k): pass
wandb = types.ModuleType("wandb")
wandb.init = lambda *a, **k: _Run()
wandb.Histogram = wandb.Image = lambda *a, **k: None
mod_tqdm = types.ModuleType("tqdm"); mod_tqdm.tqdm = tqdm
tv = types.ModuleType("torchvision"); tv.transforms = types.ModuleType("torchvision.transforms")
tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
import importlib.machinery
standins = {"wandb": wandb, "tqdm": mod_tqdm, "torchvision": tv, "torchvision.transforms": tv.transforms,
            "torchvision.transforms.functional": tv.transforms.functional}
for name, module in standins.items():
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
sys.modules.update(standins)
checkout, argv = sys.argv[1], sys.argv[2:]
sys.path.insert(0, checkout)
sys.argv = [checkout + "/train.py", *argv]
import runpy
try:
    runpy.run_path(checkout + "/train.py", run_name="__main__")
finally:
    print("STAMPS " + json.dumps(stamps))
"""


def _after_first(stamps: list[tuple[float, int]]) -> float:
    """images/s after the first step, from (time, images) progress updates."""
    images = sum(n for _, n in stamps[1:])
    return images / (stamps[-1][0] - stamps[0][0])


def prepare_pairs(tmp: Path, size: int) -> tuple[Path, Path]:
    """CHASE DB1 images and 0/255 vessel masks resized to size², as PNG: data/imgs + data/masks (same names)."""
    import cv2

    imgs, masks = tmp / "data" / "imgs", tmp / "data" / "masks"
    imgs.mkdir(parents=True)
    masks.mkdir(parents=True)
    for path in sorted(CHASE.glob("Image_*.jpg")):
        image = cv2.resize(cv2.imread(str(path)), (size, size), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(imgs / f"{path.stem}.png"), image)
        mask = cv2.imread(str(path.with_name(path.stem + "_1stHO.png")), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(
            str(masks / f"{path.stem}.png"), cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)
        )
    return imgs, masks


def milesial(args) -> dict:
    from unetkit.project.imports import import_masks
    from unetkit.training import train

    checkout = Path(args.milesial).resolve()
    if not (checkout / "train.py").is_file():
        raise SystemExit(f"{checkout}: not a Pytorch-UNet checkout (no train.py)")
    tmp = Path(tempfile.mkdtemp(prefix="unetkit-milesial-"))
    try:
        imgs, masks = prepare_pairs(tmp, args.milesial_size)
        project = import_masks(imgs, masks, tmp / "project", "vessel", tag="train")
        n = len(project)
        cfg = {
            "lr": 1e-4, "epochs": args.milesial_epochs, "val_every": args.milesial_epochs,
            "batch_size": {"train": args.batch, "val": args.batch},
            "input_size": {"width": args.milesial_size, "height": args.milesial_size},
            "dataset_tags": {"train": "train", "val": "train"},
            "unetkit": {"model": "unet", "seed": 0},
        }  # fmt: skip

        def theirs(k: int) -> float:
            cmd = [sys.executable, "-c", _STANDINS, str(checkout), "--epochs", str(args.milesial_epochs),
                   "--batch-size", str(args.batch), "--scale", "1", "--validation", "0", "--learning-rate", "1e-4"]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
            out = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            lines = [x for x in out.stdout.splitlines() if x.startswith("STAMPS ")]
            if out.returncode != 0 or not lines:
                raise SystemExit(f"milesial train.py failed:\n{out.stderr[-3000:]}")
            shutil.rmtree(tmp / "checkpoints", ignore_errors=True)
            return _after_first(json.loads(lines[-1][7:]))

        def ours(k: int) -> float:
            run = tmp / f"run{k}"
            result = train(project.path, cfg, run, progress=False)
            steps = [r for r in result.records if r["type"] == "train"]
            per_step = [(r["time"], args.batch) for r in steps]
            shutil.rmtree(run, ignore_errors=True)
            return _after_first(per_step)

        print(f"\nmilesial/Pytorch-UNet train.py (fp32) vs unetkit train (amp auto: "
              f"{resolve_numerics('auto', 'cpu').label}), 31 M U-Net, {n} CHASE DB1 images at "
              f"{args.milesial_size}², batch {args.batch}, {args.milesial_epochs} epoch(s); images/s after the "
              f"first step, {args.milesial_pairs} interleaved pairs (unetkit / milesial)")  # fmt: skip
        pairs = interleaved_pairs(args.milesial_pairs, ours, theirs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  unetkit median {statistics.median(pairs.first):.3f} img/s, milesial median "
          f"{statistics.median(pairs.second):.3f} img/s; ratio {spread(pairs.ratios)}")  # fmt: skip
    return {"unetkit_img_s": pairs.first, "milesial_img_s": pairs.second, "ratios": pairs.ratios}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="unet@128,unet@256,unet_v2@256", help="name@size,... or none")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2, help="steps (batches) per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--accuracy", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--milesial", metavar="CHECKOUT", help="a Pytorch-UNet checkout: also train against it")
    ap.add_argument("--milesial-size", type=int, default=128)
    ap.add_argument("--milesial-epochs", type=int, default=1)
    ap.add_argument("--milesial-pairs", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the figures here")
    add_peak_arguments(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    print(machine_line(args.threads))
    lines, onednn = isa_lines(resolve_numerics("auto", "cpu").label)
    peak = fp32_peak(onednn, args.peak_ghz, args.threads) if device.type == "cpu" else None
    for line in [*lines, *([peak.line()] if peak else [])]:
        print(line)
    print(f"device {device}; amp auto here = {resolve_numerics('auto', device).label}")
    results: dict = {"speed": {}, "peak_gflop_s": peak.gflops if peak else None, "isa": lines}
    if args.models != "none":
        for spec in args.models.split(","):
            name, _, size = spec.partition("@")
            results["speed"][spec] = speed(name, int(size or 256), args, device, peak)
    if args.accuracy:
        results["accuracy"] = accuracy()
    if args.milesial:
        results["milesial"] = milesial(args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
