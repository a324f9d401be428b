"""Numerics of a forward pass: mixed precision (autocast dtype), memory format and ``torch.compile``.

``amp`` modes (training config ``unetkit.amp``, ``unetkit infer --amp``, serving):

* ``auto`` (default): bf16 autocast + channels_last on a CPU where bf16 pays (:func:`cpu_bf16_pays`: AMX tiles,
  or AVX512-BF16 where a one-off probe measures bf16 at least 1.25× faster, :mod:`unetkit.models.bf16_probe`),
  AMP on CUDA (bf16 where the GPU supports it, else fp16 with a GradScaler in training), fp32 + channels_last on
  other CPUs (the same arithmetic in oneDNN's blocked formats), fp32 on other devices. Measured
  (docs/benchmarks.md, ``benchmarks/cpu_candidates.py`` and ``benchmarks/numerics.py``): channels_last trains
  auto's U-Net 1.13× and infers it 1.43× faster than plain fp32 under AVX2; bf16 + channels_last trains the 31 M
  U-Net at 0.82× fp32 on a Xeon with AVX512-BF16 and no AMX but at 2.06× on an AMD EPYC (Zen 4) with the same
  flags, hence the probe; CPUs with AMX trained it 3.7–4.5× faster in bf16.
* ``off``: fp32. ``bf16``: bf16 autocast (+ channels_last on the CPU). ``fp16``: CUDA only (fp32 on a CPU).

"Native bf16" (:func:`cpu_native_bf16`, decided by :func:`native_bf16_from`) needs the CPU flag ``avx512_bf16`` or
``amx_bf16`` *and* that torch may use it: ``ATEN_CPU_CAPABILITY`` set to anything but an avx512 value (``avx2``,
``default`` …), or a oneDNN cap ``ONEDNN_MAX_CPU_ISA`` (older spelling ``DNNL_MAX_CPU_ISA``) below
``AVX512_CORE_BF16`` (``AVX2``, ``AVX512_CORE`` …), make torch compute like a CPU without it, where bf16 is emulated
and slow. ``UNETKIT_CPU_BF16=1`` / ``=0`` overrides all of that (native and paying / neither). :func:`cpu_description`
reports what torch and oneDNN use, for benchmarks.

Losses, metrics and sliding-window accumulators stay fp32: callers cast logits with ``.float()``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from unetkit.models import bf16_probe

log = logging.getLogger("unetkit.numerics")

AMP_MODES = ("auto", "off", "bf16", "fp16")
COMPILE_MODES = ("off", "on", "auto")
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


#: The oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA`` values) at or above ``AVX512_CORE_BF16``: bf16 stays native. Lower
#: ones (``SSE41``, ``AVX``, ``AVX2``, ``AVX2_VNNI``, ``AVX2_VNNI_2``, ``AVX512_CORE``, ``AVX512_CORE_VNNI``,
#: the old ``AVX512_MIC*``) and unknown values mean emulated bf16. ``ALL`` and ``DEFAULT`` are no cap.
ONEDNN_BF16_CAPS = frozenset(
    {
        "AVX512_CORE_BF16",
        "AVX10_1_512",
        "AVX512_CORE_FP16",
        "AVX10_1_512_AMX",
        "AVX512_CORE_AMX",
        "AVX10_1_512_AMX_FP16",
        "AVX512_CORE_AMX_FP16",
        "AVX10_2_512",
        "AVX10_2_512_AMX_2",
    }
)
_ONEDNN_NO_CAP = ("", "ALL", "DEFAULT")
_OVERRIDE = "UNETKIT_CPU_BF16"
_ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def onednn_cap(env: Mapping[str, str]) -> str:
    """oneDNN's ISA cap as oneDNN reads it: ``ONEDNN_MAX_CPU_ISA``, else ``DNNL_MAX_CPU_ISA`` (upper case; "" unset)."""
    return (env.get("ONEDNN_MAX_CPU_ISA", "").strip() or env.get("DNNL_MAX_CPU_ISA", "").strip()).upper()


def native_bf16_from(env: Mapping[str, str], flags: Iterable[str]) -> bool:
    """Whether bf16 is native given environment variables ``env`` and CPU ``flags`` (``/proc/cpuinfo`` names).

    In order: ``UNETKIT_CPU_BF16`` = 1 / 0 decides alone; ``ATEN_CPU_CAPABILITY`` other than an avx512 value
    (``avx2``, ``default``, ``zen`` …) means not native; ``ONEDNN_MAX_CPU_ISA`` (else ``DNNL_MAX_CPU_ISA``, which
    oneDNN reads when the first is unset) below ``AVX512_CORE_BF16`` or unknown means not native; otherwise the
    flags decide (``avx512_bf16`` or ``amx_bf16``). Values are case-insensitive; empty counts as unset."""
    override = env.get(_OVERRIDE, "").strip().lower()
    if override in _TRUE:
        return True
    if override in _FALSE:
        return False
    if override:
        log.warning("%s=%r is neither 0 nor 1; ignored", _OVERRIDE, env[_OVERRIDE])
    aten = env.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten and not aten.startswith("avx512"):
        return False
    cap = onednn_cap(env)
    if cap not in _ONEDNN_NO_CAP and cap not in ONEDNN_BF16_CAPS:
        return False
    return any(flag in _BF16_FLAGS for flag in flags)


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags: ``torch.cpu.get_capabilities()`` where it exists (torch's cpuinfo), else the
    kernel's ``/proc/cpuinfo`` flags; empty when neither can be read."""
    caps = getattr(torch.cpu, "get_capabilities", None)
    if caps is not None:
        try:
            return frozenset(name for name, value in caps().items() if value is True)
        except Exception:  # noqa: BLE001 - an old or odd build: read the kernel's flags instead
            pass
    return _proc_flags(Path("/proc/cpuinfo"))


@functools.lru_cache(maxsize=1)
def cpu_native_bf16() -> bool:
    """True when this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16) and torch is allowed to (see
    :func:`native_bf16_from`): bf16 autocast then pays. Decided once per process, from ``os.environ``."""
    return native_bf16_from(os.environ, cpu_flags())


def bf16_pays_from(
    env: Mapping[str, str], flags: Iterable[str], gain: Callable[[], float] = lambda: 0.0
) -> bool:
    """Whether ``amp: auto`` should choose bf16 on this CPU: ``UNETKIT_CPU_BF16`` = 1 / 0 decides alone; not
    without native bf16 (:func:`native_bf16_from`); with AMX tiles (the ``amx_bf16`` flag, and no oneDNN cap below
    AMX), yes; with AVX512-BF16 alone, when ``gain()`` (the measured speed-up, :mod:`unetkit.models.bf16_probe`)
    reaches :data:`~unetkit.models.bf16_probe.MIN_GAIN`."""
    override = env.get(_OVERRIDE, "").strip().lower()
    if override in _TRUE or override in _FALSE:
        return override in _TRUE
    if not native_bf16_from(env, flags):
        return False
    cap = onednn_cap(env)
    amx = "amx_bf16" in set(flags) and (cap in _ONEDNN_NO_CAP or "AMX" in cap)
    return amx or gain() >= bf16_probe.MIN_GAIN


@functools.lru_cache(maxsize=1)
def cpu_bf16_pays() -> bool:
    """:func:`bf16_pays_from` for this process's environment and CPU (decided once; a CPU with AVX512-BF16 and
    no AMX is measured once per machine, see :mod:`unetkit.models.bf16_probe`)."""
    flags = cpu_flags()
    return bf16_pays_from(
        os.environ, flags, lambda: bf16_probe.bf16_gain(os.environ, flags, cpu_model_name())
    )


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The ``model name`` of ``/proc/cpuinfo`` with its ``cpu family`` and ``model`` numbers (a name such as "AMD
    EPYC" is the same for Zen 4 and Zen 5), else what :mod:`platform` knows."""
    try:
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if not sep:
                if fields:
                    break  # the end of the first processor's block
                continue
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            numbers = [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
            return fields["model name"] + (f" ({', '.join(numbers)})" if numbers else "")
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_description() -> dict:
    """What the CPU computes with, for benchmark reports: ``cpu`` (model name), ``torch_isa``
    (``torch.backends.cpu.get_cpu_capability()``, the ISA of ATen's own kernels), ``env`` (the ISA variables
    that are set: ``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, ``DNNL_MAX_CPU_ISA``, ``UNETKIT_CPU_BF16`` and
    MKL's ``MKL_ENABLE_INSTRUCTIONS``), ``bf16_flags`` (the CPU's bf16 flags) and ``native_bf16``."""
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - an old build without it
        isa = "unknown"
    names = (*_ISA_ENV, _OVERRIDE, "MKL_ENABLE_INSTRUCTIONS")
    return {
        "cpu": cpu_model_name(),
        "torch_isa": isa,
        "env": {name: os.environ[name] for name in names if os.environ.get(name)},
        "bf16_flags": sorted(set(_BF16_FLAGS) & cpu_flags()),
        "native_bf16": cpu_native_bf16(),
        "bf16_pays": cpu_bf16_pays(),
    }


def cpu_flags_have_bf16(cpuinfo: Path) -> bool:
    """Whether a ``/proc/cpuinfo``-style file lists ``avx512_bf16`` or ``amx_bf16`` among its flags."""
    return bool(_proc_flags(cpuinfo) & set(_BF16_FLAGS))


def _proc_flags(cpuinfo: Path) -> frozenset[str]:
    """The first ``flags`` line of a ``/proc/cpuinfo``-style file (empty when unreadable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@dataclass(frozen=True)
class Numerics:
    """What a forward pass runs in: ``dtype`` (autocast; None = fp32) and the ``channels_last`` memory format."""

    device_type: str
    dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def label(self) -> str:
        name = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]
        return name + ("+channels_last" if self.channels_last else "")

    @property
    def needs_grad_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self):
        """The autocast context of the forward pass (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model in this memory format (in place; returns it)."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x


def resolve_numerics(amp: str | bool, device: torch.device | str) -> Numerics:
    """The numerics an ``amp`` mode means on ``device``. ``True``/``False`` are the old flag: AMP (fp16 on CUDA,
    bf16 on CPU) or fp32."""
    dev = torch.device(device)
    if amp is True:
        amp = "fp16" if dev.type == "cuda" else "bf16"
    elif amp is False:
        amp = "off"
    if amp not in AMP_MODES:
        raise ValueError(f"unknown amp mode {amp!r}; expected one of {', '.join(AMP_MODES)}")
    if amp == "off":
        return Numerics(dev.type)
    if dev.type == "cuda":
        if amp == "auto":
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Numerics("cuda", torch.bfloat16 if amp == "bf16" else torch.float16)
    if dev.type != "cpu":
        return Numerics(dev.type)
    if amp == "fp16":
        log.warning("amp fp16 needs CUDA; running in fp32 on the CPU (use amp bf16 for CPU autocast)")
        return Numerics("cpu")
    if amp == "auto" and not cpu_bf16_pays():
        return Numerics("cpu", channels_last=True)  # fp32 in oneDNN's blocked formats: measured faster
    return Numerics("cpu", torch.bfloat16, channels_last=True)


class CompiledModule:
    """``torch.compile(module)`` that falls back to the plain module, with a one-line warning, when compilation
    (or a compiled call) fails; the fallback is permanent. Calls go to the compiled module otherwise."""

    def __init__(self, module: torch.nn.Module, **options):
        self.module = module
        self.failed = False
        try:
            isolate_inductor_cache()
            self.compiled = torch.compile(module, **options)
        except Exception as exc:  # noqa: BLE001 - e.g. an unsupported Python / platform
            self._fall_back(exc)

    def _fall_back(self, exc: BaseException) -> None:
        self.failed = True
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        log.warning("torch.compile failed (%s: %s); running uncompiled", type(exc).__name__, first)

    def __call__(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - compiler errors of any kind: the eager module decides
                self._fall_back(exc)
        return self.module(*args, **kwargs)

    def __getattr__(self, name):  # train()/eval()/parameters() … of the wrapped module
        return getattr(self.module, name)


def isolate_inductor_cache() -> None:
    """Inductor's on-disk cache does not tell kernels built under ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA`` caps
    from native ones: a kernel cached natively and reused under ``ATEN_CPU_CAPABILITY=avx2`` gave wrong values, the
    other way round it crashed. Unless the user chose a cache folder (``TORCHINDUCTOR_CACHE_DIR``), each capability
    gets its own. (Under the ``ATEN_CPU_CAPABILITY`` emulation even fresh compiled kernels are wrong: inductor
    targets the CPU's own ISA.)"""
    import getpass
    import tempfile

    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:
        return
    capability = torch.backends.cpu.get_cpu_capability().lower()
    cap = onednn_cap(os.environ) or "all"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name (some containers)
        user = str(os.getuid())
    folder = Path(tempfile.gettempdir()) / f"torchinductor_{user}" / f"{capability}-{cap.lower()}"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)


def compile_module(module: torch.nn.Module, **options) -> CompiledModule:
    """``module`` compiled with a clean fallback (see :class:`CompiledModule`)."""
    return CompiledModule(module, **options)


def _time_calls(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def compile_gain(
    module: torch.nn.Module,
    example: torch.Tensor,
    numerics: Numerics | None = None,
    *,
    train: bool = False,
    calls: int = 3,
) -> float:
    """Measured speed-up of ``torch.compile`` on ``example`` (eager seconds / compiled seconds per call, after a
    warm-up call on each side); 0.0 when compilation fails. ``train``: forward + backward, else inference."""
    numerics = numerics or Numerics(example.device.type)
    example = numerics.prepare_input(example)
    if train:  # a copy: the probe's steps must not move the caller's BN statistics or gradients
        module = copy.deepcopy(module)
    compiled = CompiledModule(module)

    def runner(net) -> Callable[[], object]:
        def call():
            with numerics.autocast():
                out = net(example)
            out = out[0] if isinstance(out, (tuple, list)) else out
            if train:
                out.float().mean().backward()
            return out

        def infer():
            with torch.inference_mode():
                return call()

        return call if train else infer

    eager_call, compiled_call = runner(module), runner(compiled)
    eager_call()
    compiled_call()
    if compiled.failed:
        return 0.0
    eager = _time_calls(eager_call, calls)
    fast = _time_calls(compiled_call, calls)
    return 0.0 if compiled.failed else eager / fast


def choose_compile(
    module: torch.nn.Module, example: torch.Tensor, *probe, min_gain: float = 1.05, **options
) -> bool:
    """The ``auto`` choice: compile when a short probe (:func:`compile_gain`, same arguments) shows at least
    ``min_gain``."""
    gain = compile_gain(module, example, *probe, **options)
    log.info("torch.compile probe: %.2f× %s", gain, "(compiling)" if gain >= min_gain else "(not compiling)")
    return gain >= min_gain
