"""Native bf16 detection: the decision of ``amp: auto`` on a CPU from its flags and the variables that make torch
compute like an AVX2 CPU (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA`` / ``DNNL_MAX_CPU_ISA``), with unetkit's
own override ``UNETKIT_CPU_BF16``."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from unetkit.models import numerics
from unetkit.models.numerics import ONEDNN_BF16_CAPS, cpu_description, native_bf16_from

#: Flags of the two kinds of machine: one with native bf16 (AVX512-BF16 or AMX), one with only AVX2 / AVX-512.
BF16_CPU = frozenset({"sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16"})
AMX_CPU = frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"})
AVX512_CPU = frozenset({"sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"})
AVX2_CPU = frozenset({"sse4_2", "avx", "avx2", "fma"})
NATIVE_CPUS = (BF16_CPU, AMX_CPU)
OTHER_CPUS = (AVX512_CPU, AVX2_CPU, frozenset())


@pytest.mark.parametrize("flags", NATIVE_CPUS + OTHER_CPUS)
def test_without_variables_the_flags_decide(flags):
    assert native_bf16_from({}, flags) == (flags in NATIVE_CPUS)


@pytest.mark.parametrize(
    ("value", "native_cpu_result"),
    [
        ("avx512", True),
        ("AVX512", True),
        ("", True),  # empty = unset
        ("avx2", False),
        ("AVX2", False),
        ("default", False),
        ("zen", False),
        ("sve256", False),
    ],
)
def test_aten_cpu_capability(value, native_cpu_result):
    env = {"ATEN_CPU_CAPABILITY": value}
    for flags in NATIVE_CPUS:
        assert native_bf16_from(env, flags) is native_cpu_result, (value, flags)
    for flags in OTHER_CPUS:  # a variable never makes a CPU without bf16 native
        assert native_bf16_from(env, flags) is False, (value, flags)


CAPS_BELOW = ["SSE41", "AVX", "AVX2", "avx2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
              "AVX512_MIC", "AVX512_MIC_4OPS", "no-such-isa"]  # fmt: skip
CAPS_NATIVE = ["", "ALL", "all", "DEFAULT", "AVX512_CORE_BF16", "avx512_core_bf16", "AVX512_CORE_FP16",
               "AVX10_1_512", "AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX512_CORE_AMX_FP16", "AVX10_1_512_AMX_FP16",
               "AVX10_2_512", "AVX10_2_512_AMX_2"]  # fmt: skip


@pytest.mark.parametrize("name", ["ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"])
@pytest.mark.parametrize("cap", CAPS_BELOW + CAPS_NATIVE)
def test_onednn_isa_cap(name, cap):
    env = {name: cap}
    for flags in NATIVE_CPUS:
        assert native_bf16_from(env, flags) is (cap in CAPS_NATIVE), (name, cap, flags)
    for flags in OTHER_CPUS:
        assert native_bf16_from(env, flags) is False, (name, cap, flags)


def test_the_caps_at_or_above_bf16_are_all_listed():
    assert {c.upper() for c in CAPS_NATIVE} - {"", "ALL", "DEFAULT"} == ONEDNN_BF16_CAPS


def test_onednn_spelling_wins_over_the_old_dnnl_one():
    """oneDNN reads ``ONEDNN_MAX_CPU_ISA`` and falls back to ``DNNL_MAX_CPU_ISA`` only when it is unset."""
    assert not native_bf16_from({"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "ALL"}, BF16_CPU)
    assert native_bf16_from({"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "AVX2"}, BF16_CPU)
    assert not native_bf16_from({"ONEDNN_MAX_CPU_ISA": "", "DNNL_MAX_CPU_ISA": "AVX2"}, BF16_CPU)


def test_both_variables_must_allow_bf16():
    assert not native_bf16_from({"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX2"}, BF16_CPU)
    assert not native_bf16_from({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "ALL"}, BF16_CPU)
    env = {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}
    assert native_bf16_from(env, AMX_CPU) and not native_bf16_from(env, AVX512_CPU)


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
@pytest.mark.parametrize("flags", NATIVE_CPUS + OTHER_CPUS)
def test_override_forces_native_first(value, flags):
    env = {"UNETKIT_CPU_BF16": value, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert native_bf16_from(env, flags) is True


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
@pytest.mark.parametrize("flags", NATIVE_CPUS + OTHER_CPUS)
def test_override_forces_none_first(value, flags):
    env = {"UNETKIT_CPU_BF16": value, "ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "ALL"}
    assert native_bf16_from(env, flags) is False


def test_an_unreadable_override_is_ignored_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="unetkit.numerics"):
        assert native_bf16_from({"UNETKIT_CPU_BF16": "maybe"}, BF16_CPU)
        assert not native_bf16_from({"UNETKIT_CPU_BF16": "maybe"}, AVX2_CPU)
    assert "UNETKIT_CPU_BF16" in caplog.text
    assert native_bf16_from({"UNETKIT_CPU_BF16": ""}, BF16_CPU)  # empty = unset, silently


def test_cpu_native_bf16_follows_the_environment(monkeypatch):
    """The cached function is the pure decision on ``os.environ`` and this CPU's flags."""
    for name in ("UNETKIT_CPU_BF16", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    numerics.cpu_native_bf16.cache_clear()
    try:
        assert numerics.cpu_native_bf16() == native_bf16_from({}, numerics.cpu_flags())
        numerics.cpu_native_bf16.cache_clear()
        monkeypatch.setenv("UNETKIT_CPU_BF16", "0")
        assert numerics.cpu_native_bf16() is False
        numerics.cpu_native_bf16.cache_clear()
        monkeypatch.setenv("UNETKIT_CPU_BF16", "1")
        assert numerics.cpu_native_bf16() is True
    finally:
        numerics.cpu_native_bf16.cache_clear()


def test_cpu_description_names_cpu_isa_and_caps(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    numerics.cpu_native_bf16.cache_clear()
    try:
        d = cpu_description()
    finally:
        numerics.cpu_native_bf16.cache_clear()
    assert d["cpu"] and isinstance(d["cpu"], str)
    assert d["torch_isa"]  # e.g. AVX2, AVX512, DEFAULT
    assert d["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and "DNNL_MAX_CPU_ISA" not in d["env"]
    assert set(d["bf16_flags"]) <= {"avx512_bf16", "amx_bf16"}
    assert d["native_bf16"] is False  # the cap rules bf16 out on any CPU


def test_a_process_told_to_compute_like_avx2_runs_auto_in_fp32():
    code = (
        "import torch; from unetkit.models.numerics import resolve_numerics, cpu_description; "
        "n = resolve_numerics('auto', torch.device('cpu')); d = cpu_description(); "
        "print(n.dtype is None, d['native_bf16'], d['torch_isa'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("UNETKIT_CPU_BF16", "DNNL_MAX_CPU_ISA")}
    env.update(ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    fp32, native, isa = out.stdout.split()
    assert fp32 == "True" and native == "False", out.stdout
    if platform.machine().lower() in ("x86_64", "amd64"):  # torch follows the variable (DEFAULT below AVX2)
        assert isa in ("AVX2", "DEFAULT"), out.stdout


@pytest.mark.parametrize(
    "env, flags, gain, pays",
    [
        ({}, {"avx512_bf16", "amx_bf16"}, None, True),  # Sapphire Rapids and later: AMX tiles, no probe
        ({}, {"avx512_bf16"}, 0.82, False),  # AVX512-BF16 without AMX, measured slower (a Xeon, model 207)
        ({}, {"avx512_bf16"}, 2.19, True),  # the same flags, measured faster (AMD EPYC, Zen 4)
        ({}, {"avx512_bf16"}, 1.25, True),  # the margin itself counts
        ({}, {"avx512_bf16"}, 1.24, False),
        ({}, {"avx2"}, None, False),  # no native bf16: nothing to measure
        (
            {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
            {"avx512_bf16", "amx_bf16"},
            0.9,
            False,
        ),  # AMX capped off
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, {"avx512_bf16", "amx_bf16"}, 2.0, True),
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, {"avx512_bf16", "amx_bf16"}, None, True),
        (
            {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
            {"avx512_bf16", "amx_bf16"},
            None,
            False,
        ),
        ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, {"avx512_bf16"}, None, False),
        ({"UNETKIT_CPU_BF16": "1"}, {"avx2"}, None, True),  # the override decides alone
        ({"UNETKIT_CPU_BF16": "0"}, {"avx512_bf16", "amx_bf16"}, None, False),
        ({"UNETKIT_CPU_BF16": "0"}, {"avx512_bf16"}, None, False),
    ],
)
def test_amp_auto_chooses_bf16_only_where_it_pays(env, flags, gain, pays):
    def measured() -> float:
        assert gain is not None, "no probe is needed here"
        return gain

    assert numerics.bf16_pays_from(env, flags, measured) is pays


def test_the_inductor_cache_is_kept_per_capability(monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    numerics.isolate_inductor_cache()
    folder = os.environ["TORCHINDUCTOR_CACHE_DIR"]
    capability = torch.backends.cpu.get_cpu_capability().lower()
    assert folder.endswith(f"{capability}-avx2")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/chosen/by/the/user")
    numerics.isolate_inductor_cache()
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/chosen/by/the/user"  # a user's choice is kept


def test_the_cpu_name_carries_its_family_and_model_numbers(tmp_path):
    """ "AMD EPYC" is the model name of Zen 4 and Zen 5 guests alike: the numbers tell them apart."""
    block = "processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\n"
    info = tmp_path / "cpuinfo"
    info.write_text(block.format(n=0, family=26, model=2) + "\n" + block.format(n=1, family=25, model=17))
    assert numerics.cpu_model_name(info) == "AMD EPYC (cpu family 26, model 2)"  # the first processor's block
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\n")
    assert numerics.cpu_model_name(info) == "Some CPU"
    assert numerics.cpu_model_name(tmp_path / "missing") == (platform.processor() or platform.machine())
