"""The speed probe: seconds per training step and per inference window of a candidate network on this device."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from unetkit.models import create_model
from unetkit.models.numerics import resolve_numerics


@dataclass(frozen=True)
class Speed:
    train_step_s: float  # one optimiser step on a batch of patches
    window_s: float  # one window forward (inference, batched)
    numerics: str  # what "auto" resolved to


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
    """Time ``steps`` training steps (after one warm-up) and as many batched forwards of ``patch``² inputs."""
    torch.manual_seed(0)
    net = create_model(model, num_classes, in_channels=in_channels, **options).to(device)
    numerics = resolve_numerics(amp, device)
    numerics.prepare_model(net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = numerics.prepare_input(torch.randn(batch, in_channels, patch, patch, device=device))
    y = torch.randint(0, num_classes, (batch, patch, patch), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with numerics.autocast():
            out = net(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
        loss = torch.nn.functional.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()

    def forward():
        with torch.inference_mode(), numerics.autocast():
            net(x)

    net.train()
    train_s = _timed(step, steps, device)
    net.eval()
    window_s = _timed(forward, steps, device) / batch
    return Speed(train_s, window_s, numerics.label)


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
