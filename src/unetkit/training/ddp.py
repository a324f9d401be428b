"""Devices and DistributedDataParallel: one process per GPU (NCCL), or CPU processes on gloo for testing.

``gpu_devices`` lists CUDA ids; the batch sizes are per GPU as in the original, so the effective batch is
``batch_size × len(gpu_devices)``. When some or all of the listed GPUs are missing the run goes on with what
exists (CPU without CUDA), with a warning, and the per-process batch is scaled so that the effective batch
stays the same. Under ``torchrun`` (``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set) the process group comes from
the environment and each process uses ``cuda:LOCAL_RANK`` (CPU/gloo without CUDA).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from unetkit.training.config import TrainConfig


@dataclass(frozen=True)
class DeviceLayout:
    device_type: str  # "cuda" | "cpu"
    device_ids: tuple[int, ...]  # CUDA ids, one per local process (empty on CPU)
    world: int  # processes launched here (1 = no DDP unless torchrun)
    batch_train: int  # per process
    batch_val: int
    backend: str  # "nccl" | "gloo"
    torchrun: bool = False

    def device(self, local_rank: int) -> torch.device:
        if self.device_type == "cuda":
            return torch.device("cuda", self.device_ids[local_rank])
        return torch.device("cpu")


def under_torchrun() -> bool:
    return all(k in os.environ for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


def device_layout(cfg: TrainConfig) -> DeviceLayout:
    """Decide where to train (see the module docstring)."""
    ids = list(cfg.gpu_devices)
    bt, bv = cfg.batch_size.train, cfg.batch_size.val
    if under_torchrun():
        world = int(os.environ["WORLD_SIZE"])
        if torch.cuda.is_available():  # process LOCAL_RANK uses cuda:LOCAL_RANK
            ids = tuple(range(torch.cuda.device_count()))
            return DeviceLayout("cuda", ids, world, bt, bv, "nccl", torchrun=True)
        return DeviceLayout("cpu", (), world, bt, bv, "gloo", torchrun=True)
    cpu_procs = cfg.unetkit.ddp_cpu_processes
    if cpu_procs:
        # testing mode: gpu_devices ignored; batch sizes stay per process
        return DeviceLayout("cpu", (), cpu_procs, bt, bv, "gloo")
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    usable = [i for i in ids if i < available]
    if not usable:
        warnings.warn(
            f"CUDA is not available: training on the CPU (gpu_devices {ids} ignored; per-step batch "
            f"{bt}×{len(ids)} kept)",
            UserWarning,
            stacklevel=2,
        )
        return DeviceLayout("cpu", (), 1, bt * len(ids), bv * len(ids), "gloo")
    if len(usable) < len(ids):
        warnings.warn(
            f"gpu_devices {sorted(set(ids) - set(usable))} do not exist ({available} visible): training on "
            f"{usable} with the per-process batch scaled to keep the effective batch {bt * len(ids)}",
            UserWarning,
            stacklevel=2,
        )
    k = len(usable)
    return DeviceLayout(
        "cuda", tuple(usable), k, math.ceil(bt * len(ids) / k), math.ceil(bv * len(ids) / k),
        "nccl" if k > 1 else "gloo",
    )  # fmt: skip


def init_process_group(layout: DeviceLayout, rank: int, port: int | None) -> None:
    if layout.torchrun:
        dist.init_process_group(layout.backend)
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(layout.backend, rank=rank, world_size=layout.world)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def freeze_unused_parameters(
    model: torch.nn.Module, input_shape: tuple[int, ...], device: torch.device
) -> list[str]:
    """Find parameters that never receive a gradient (e.g. UNet V2's unused ``blocks.0``) with one dry
    forward/backward in train mode and set ``requires_grad=False`` on them, so DistributedDataParallel does not
    wait for their gradients. BatchNorm buffers are restored afterwards. Returns the frozen names."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    model.train()
    out = model(torch.zeros(input_shape, device=device))
    outs = out if isinstance(out, (tuple, list)) else (out,)
    sum(o.float().sum() for o in outs).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    for name, p in model.named_parameters():
        if name in unused:
            p.requires_grad_(False)
    return unused
