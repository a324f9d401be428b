"""The speed probes: a few training steps of the network alone (to size the second probe), then the real training
pipeline (steps, one validation, start-up), which the plan is computed from."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from unetkit.models import create_model
from unetkit.models.numerics import resolve_numerics


@dataclass(frozen=True)
class Speed:
    train_step_s: float  # one optimiser step of the network alone on a batch of patches
    numerics: str  # what "auto" resolved to
    planning_s: float = 0.0  # time spent on the fingerprint and this probe
    step_bytes: int = 0  # memory one training step holds (activations, gradients), measured
    available_bytes: int = 0  # memory free on the device when it was measured


def probe(
    model: str,
    options: dict,
    in_channels: int,
    num_classes: int,
    patch: int,
    batch: int,
    device: torch.device,
    *,
    steps: int = 3,
    amp: str = "auto",
) -> Speed:
    """Time ``steps`` training steps (after one warm-up) on random ``patch``² inputs."""
    torch.manual_seed(0)
    net = create_model(model, num_classes, in_channels=in_channels, **options).to(device)
    numerics = resolve_numerics(amp, device)
    numerics.prepare_model(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = numerics.prepare_input(torch.randn(batch, in_channels, patch, patch, device=device))
    y = torch.randint(0, num_classes, (batch, patch, patch), device=device)

    held = []

    def step():
        opt.zero_grad(set_to_none=True)
        saved: dict[tuple, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:  # every tensor kept for the backward pass, counted once
            saved[(t.data_ptr(), t.shape, t.dtype)] = t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), numerics.autocast():
            out = net(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            loss = torch.nn.functional.cross_entropy(out.float(), y)
        held.append(sum(saved.values()))
        loss.backward()
        opt.step()

    net.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    step_s = _timed(step, steps, device)
    if device.type == "cuda":
        step_bytes = torch.cuda.max_memory_allocated(device) - base
        available = torch.cuda.mem_get_info(device)[0] + step_bytes
    else:  # saved activations, plus weights, gradients and the two Adam moments
        weights = sum(p.numel() * p.element_size() for p in net.parameters())
        step_bytes, available = max(held) + 4 * weights, _available_bytes()
    return Speed(step_s, numerics.label, step_bytes=max(0, int(step_bytes)), available_bytes=int(available))


def _available_bytes() -> int:
    """Memory the system can still give (MemAvailable; 0 when unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _timed(fn, steps: int, device: torch.device) -> float:
    fn()  # warm-up: allocations, kernels, autotuning
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


@dataclass(frozen=True)
class TrainingSpeed:
    step_s: float  # one training iteration of the real pipeline (reading, cropping, augmenting, stepping)
    validation_s: float  # one validation with its checkpoint
    startup_s: float  # per training run: reading the project, building the model and loaders


def probe_training(project_dir, config: dict, split: dict, steps: int = 12, scratch=None) -> TrainingSpeed:
    """Run the real training pipeline for ``steps`` iterations (one validation at the end) in a hidden scratch
    folder inside ``scratch`` (default: the system's temporary folder) and time it: the metrics log stamps every
    iteration. The folder is removed afterwards (an ``auto --resume`` removes one a kill left)."""
    import shutil
    import tempfile
    from pathlib import Path

    from unetkit.training import train

    scratch = Path(tempfile.mkdtemp(prefix=".probe-", dir=scratch))
    per_epoch = max(1, -(-len(split["train"]) // config["batch_size"]["train"]))
    epochs = max(2, -(-steps // per_epoch))
    config = {**config, "epochs": epochs, "val_every": epochs}  # one validation, at the end
    config["unetkit"] = {**config["unetkit"], "log_every": 1}
    try:
        started = time.perf_counter()
        result = train(project_dir, config, scratch / "run", progress=False, split=split, quiet=True)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stamps = [r["time"] for r in result.records if r.get("type") == "train"]
    val_end = max(r["time"] for r in result.records if r.get("type") == "val")
    skip = min(max(2, per_epoch), len(stamps) - 2)  # the first epoch fills the sample cache and allocators
    step_s = (stamps[-1] - stamps[skip]) / max(1, len(stamps) - 1 - skip)
    validation_s = max(0.0, val_end - stamps[-1])
    return TrainingSpeed(step_s, validation_s, max(0.0, wall - val_end))
