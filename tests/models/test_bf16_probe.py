"""The bf16 probe: a real measurement, kept per machine, and read back instead of measuring again."""

from __future__ import annotations

import json

import pytest

from unetkit.models import bf16_probe

FLAGS = {"avx512_bf16", "avx2"}


def test_the_probe_measures_a_positive_ratio():
    gain = bf16_probe.measure_bf16_gain(side=32, batch=2)
    assert gain > 0  # the ratio itself depends on the CPU: 0.8 on some AVX512-BF16 Xeons, ≥ 2 on Zen 4


def test_one_measurement_per_machine(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    calls = []

    def measure() -> float:
        calls.append(1)
        return 1.7

    assert bf16_probe.bf16_gain(env, FLAGS, "cpu A", measure) == 1.7
    assert bf16_probe.bf16_gain(env, FLAGS, "cpu A", measure) == 1.7
    assert len(calls) == 1  # the second answer came from the cache
    cached = json.loads((tmp_path / "unetkit" / bf16_probe.CACHE_FILE).read_text())
    assert [entry["gain"] for entry in cached.values()] == [1.7]
    assert list((tmp_path / "unetkit").iterdir()) == [tmp_path / "unetkit" / bf16_probe.CACHE_FILE]  # no .tmp


@pytest.mark.parametrize(
    "changed",
    [
        ({}, {"avx512_bf16"}, "cpu A"),  # other flags
        ({}, FLAGS, "cpu B"),  # another CPU model
        ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, FLAGS, "cpu A"),  # another ISA cap
    ],
)
def test_another_machine_or_cap_is_measured_again(tmp_path, changed):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    bf16_probe.bf16_gain(env, FLAGS, "cpu A", lambda: 1.7)
    extra_env, flags, model = changed
    assert bf16_probe.bf16_gain({**env, **extra_env}, flags, model, lambda: 0.8) == 0.8


def test_a_broken_cache_is_measured_around(tmp_path):
    folder = tmp_path / "unetkit"
    folder.mkdir()
    (folder / bf16_probe.CACHE_FILE).write_text("{not json")
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert bf16_probe.bf16_gain(env, FLAGS, "cpu A", lambda: 0.9) == 0.9
    assert json.loads((folder / bf16_probe.CACHE_FILE).read_text())  # rewritten whole
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert bf16_probe.bf16_gain({"XDG_CACHE_HOME": str(blocked)}, FLAGS, "cpu A", lambda: 1.3) == 1.3
