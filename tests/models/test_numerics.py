"""Numerics: the amp modes on CPU and (faked) CUDA, bf16 detection, channels_last, torch.compile with fallback."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

from unetkit.inference.backends import TorchBackend
from unetkit.models import create_model, numerics
from unetkit.models.numerics import (
    CompiledModule,
    Numerics,
    choose_compile,
    compile_gain,
    cpu_flags_have_bf16,
    resolve_numerics,
)


@pytest.fixture
def native_bf16(monkeypatch):
    def set_native(value: bool):
        monkeypatch.setattr(numerics, "cpu_bf16_pays", lambda: value)

    return set_native


def test_auto_on_cpu_follows_native_bf16(native_bf16):
    native_bf16(True)
    n = resolve_numerics("auto", "cpu")
    assert n == Numerics("cpu", torch.bfloat16, channels_last=True) and n.label == "bf16+channels_last"
    assert not n.needs_grad_scaler
    native_bf16(False)
    n = resolve_numerics(
        "auto", "cpu"
    )  # fp32 in channels-last layout: the same arithmetic, faster convolutions
    assert n == Numerics("cpu", channels_last=True) and n.label == "fp32+channels_last"


def test_explicit_modes_on_cpu(native_bf16, caplog):
    native_bf16(False)
    assert resolve_numerics("off", "cpu").dtype is None
    assert resolve_numerics(False, "cpu").dtype is None
    assert resolve_numerics("bf16", "cpu") == Numerics("cpu", torch.bfloat16, channels_last=True)
    assert resolve_numerics(True, "cpu").dtype == torch.bfloat16  # the old --amp flag
    with caplog.at_level(logging.WARNING, logger="unetkit.numerics"):
        assert resolve_numerics("fp16", "cpu").dtype is None
    assert "needs CUDA" in caplog.text
    with pytest.raises(ValueError, match="unknown amp mode"):
        resolve_numerics("fp8", "cpu")


@pytest.mark.parametrize("bf16_gpu", [True, False])
def test_cuda_modes_with_a_faked_gpu(monkeypatch, bf16_gpu):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_gpu)
    auto = resolve_numerics("auto", "cuda:0")
    assert auto.device_type == "cuda" and not auto.channels_last
    assert auto.dtype == (torch.bfloat16 if bf16_gpu else torch.float16)
    assert auto.needs_grad_scaler == (not bf16_gpu)
    assert resolve_numerics("fp16", "cuda").needs_grad_scaler
    assert resolve_numerics(True, "cuda").dtype == torch.float16  # the old flag: fp16 on CUDA
    assert resolve_numerics("bf16", "cuda").dtype == torch.bfloat16
    assert resolve_numerics("off", "cuda").dtype is None


def test_cpuinfo_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert cpu_flags_have_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16x\n")
    assert not cpu_flags_have_bf16(info)
    assert not cpu_flags_have_bf16(tmp_path / "missing")


def test_detection_agrees_with_the_kernel():
    from pathlib import Path

    proc = Path("/proc/cpuinfo")
    if not proc.is_file():
        pytest.skip("no /proc/cpuinfo on this platform")
    flags_say = numerics.native_bf16_from(os.environ, numerics.cpu_flags())  # the ISA caps and override too
    assert numerics.cpu_native_bf16() == flags_say
    if not any(k in os.environ for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                                          "UNETKIT_CPU_BF16")):  # fmt: skip
        assert flags_say == cpu_flags_have_bf16(proc)


def test_bf16_channels_last_forward_backward_keeps_fp32_logits_close():
    torch.manual_seed(0)
    model = create_model("unet", 2, base_channels=8, depth=2).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    n = Numerics("cpu", torch.bfloat16, channels_last=True)
    n.prepare_model(model)
    convs = [p for p in model.parameters() if p.dim() == 4 and p.shape[2] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    with torch.no_grad(), n.autocast():
        out = model(n.prepare_input(x))
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.1
    model.train()
    with n.autocast():
        loss = torch.nn.functional.cross_entropy(
            model(n.prepare_input(x)).float(), torch.zeros(2, 32, 32).long()
        )
    loss.backward()
    assert loss.dtype == torch.float32 and all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_torch_backend_auto_returns_contiguous_fp32(native_bf16):
    torch.manual_seed(0)
    model = create_model("unet", 2, base_channels=8, depth=2)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    fp32 = TorchBackend(model, "cpu", amp="off").logits(x)
    native_bf16(True)
    fast = TorchBackend(model, "cpu", amp="auto")
    assert fast.numerics.dtype == torch.bfloat16
    logits, probs = fast.logits(x), fast.probabilities(x)
    assert (
        logits.dtype == probs.dtype == np.float32 and logits.flags.c_contiguous and probs.flags.c_contiguous
    )
    assert np.abs(logits - fp32).max() < 0.1
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)  # softmax in fp32
    with pytest.raises(Exception, match="unknown compile mode"):
        TorchBackend(model, "cpu", compile="always")


def test_compile_failure_falls_back_with_one_notice(monkeypatch, caplog):
    model = torch.nn.Conv2d(3, 2, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)

    def broken(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler\nlong trace ...")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: broken)
    wrapped = CompiledModule(model)
    with caplog.at_level(logging.WARNING, logger="unetkit.numerics"):
        a = wrapped(x)
        b = wrapped(x)
    assert wrapped.failed and torch.equal(a, model(x)) and torch.equal(b, a)
    notices = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    assert "no C++ compiler" in notices[0].getMessage()
    assert wrapped.weight is model.weight  # attributes reach the wrapped module
    assert compile_gain(model, x) == 0.0 and not choose_compile(model, x)


def test_compile_failure_at_construction(monkeypatch):
    def refuse(module, **kw):
        raise RuntimeError("Python 3.99 is not supported")

    monkeypatch.setattr(torch, "compile", refuse)
    model = torch.nn.Conv2d(3, 2, 1)
    wrapped = CompiledModule(model)
    x = torch.randn(1, 3, 4, 4)
    assert wrapped.failed and torch.equal(wrapped(x), model(x))


@pytest.mark.skipif(
    bool(os.environ.get("ATEN_CPU_CAPABILITY")),
    reason="inductor generates code for the CPU's own ISA, not ATEN_CPU_CAPABILITY's: compiled results are wrong "
    "under that emulation (real AVX2 CPUs are not affected)",
)
def test_real_compile_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    x = torch.randn(1, 3, 16, 16)
    wrapped = CompiledModule(model)
    with torch.no_grad():
        out = wrapped(x)
    assert not wrapped.failed
    torch.testing.assert_close(out, model(x).detach(), atol=1e-5, rtol=1e-5)
