import pytest
import torch

from unetkit.training import ddp
from unetkit.training.config import parse_config


def _cuda(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)


def cfg(**kw):
    return parse_config({"batch_size": {"train": 12, "val": 6}, **kw})


def test_no_cuda_trains_on_cpu_keeping_the_effective_batch(monkeypatch):
    _cuda(monkeypatch, 0)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        plan = ddp.device_layout(cfg(gpu_devices=[0, 1, 2, 3]))
    assert (plan.device_type, plan.world, plan.batch_train, plan.batch_val) == ("cpu", 1, 48, 24)
    assert plan.device(0) == torch.device("cpu")


def test_gpu_plans(monkeypatch):
    _cuda(monkeypatch, 4)
    plan = ddp.device_layout(cfg(gpu_devices=[2, 3]))
    assert (plan.device_type, plan.world, plan.backend, plan.batch_train) == ("cuda", 2, "nccl", 12)
    assert plan.device(1) == torch.device("cuda", 3)
    one = ddp.device_layout(cfg(gpu_devices=[1]))
    assert (one.world, one.device(0)) == (1, torch.device("cuda", 1))
    _cuda(monkeypatch, 1)
    with pytest.warns(UserWarning, match=r"gpu_devices \[1, 2, 3\] do not exist"):
        short = ddp.device_layout(cfg(gpu_devices=[0, 1, 2, 3]))
    assert (short.world, short.batch_train, short.batch_val) == (1, 48, 24)


def test_cpu_ddp_and_torchrun(monkeypatch):
    _cuda(monkeypatch, 0)
    plan = ddp.device_layout(cfg(unetkit={"ddp_cpu_processes": 2}))
    assert (plan.device_type, plan.world, plan.backend, plan.batch_train) == ("cpu", 2, "gloo", 12)
    _cuda(monkeypatch, 2)
    for k, v in {
        "WORLD_SIZE": "4",
        "RANK": "3",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "h",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(k, v)
    tr = ddp.device_layout(cfg())
    assert tr.torchrun and tr.world == 4 and tr.backend == "nccl" and tr.device(1) == torch.device("cuda", 1)
