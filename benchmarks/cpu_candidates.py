"""The CPU speed candidates for fp32 (AVX2 and other CPUs without AMX bf16), measured on ``auto``'s network.

Training step (forward + cross-entropy + backward + Adam) and inference batch of a U-Net as ``auto`` plans it on
a CPU (16 base channels, depth 4, 128² patches; training batch 8, inference batch 4 windows), for each candidate:

* ``eager``: plain fp32 (the floor every ratio is taken against);
* ``channels_last``: the same arithmetic in oneDNN's blocked (channels-last) formats;
* ``compile``: ``torch.compile`` (inductor) as unetkit runs it (``compile_module``), its warm-up printed apart (``--no-compile`` leaves it out);
* ``compile+channels_last``;
* ``bf16+channels_last`` (where bf16 is native): bf16 autocast, as ``amp: auto`` runs it where bf16 pays;
* ``channels_last+fold`` (inference only): batch norm folded into the preceding convolution
  (``torch.nn.utils.fusion.fuse_conv_bn_eval``), so an eval-mode forward skips the normalisation passes;
* ``amp auto``: what unetkit's default chooses on this CPU (``resolve_numerics("auto", "cpu")``, so with the bf16
  probe's answer where the CPU has AVX512-BF16 without AMX);
* ``onnxruntime`` (inference only): the model exported to ONNX, run by ONNX Runtime. Its MLAS kernels pick the ISA
  from the CPU itself: under ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA`` emulation it still runs AVX-512 code,
  so its ratio is only meaningful on the CPU as it is (the script says so).

Each round measures every candidate back to back, rotating the order; the ratios to eager are per round and the
min / median / max over the rounds are printed, with the CPU and the ISA first, then each candidate's achieved
GFLOP/s (FLOPs counted by ``FlopCounterMode``) as a share of the nominal fp32 peak and of the measured densest
convolution (``machine.densest_conv_gflops``), so a target that needs more than the ceiling shows as such. The profile (``--profile``) shows
where an eager training step spends its time.

    .venv/bin/python benchmarks/cpu_candidates.py [--rounds 5] [--steps 3] [--profile]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/cpu_candidates.py   # as AVX2
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import warnings

import torch
from machine import densest_conv_gflops, fp32_peak, isa_lines
from ratios import machine_line, spread

from unetkit.models import create_model
from unetkit.models.numerics import (
    Numerics,
    compile_module,
    cpu_native_bf16,
    isolate_inductor_cache,
    resolve_numerics,
)


def network(channels: int, depth: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", 2, base_channels=channels, depth=depth)


def numerics_of(kind: str) -> Numerics:
    """The numerics of a candidate: ``amp auto`` is unetkit's default on this CPU."""
    if kind == "amp auto":
        return resolve_numerics("auto", "cpu")
    kind = kind.removesuffix("+fold")
    dtype = torch.bfloat16 if kind.startswith("bf16") else None
    return Numerics("cpu", dtype, channels_last="channels_last" in kind)


def training_step(kind: str, args) -> callable:
    numerics = numerics_of(kind)
    net = numerics.prepare_model(network(args.channels, args.depth))
    forward = compile_module(net) if "compile" in kind else net
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = numerics.prepare_input(torch.randn(args.batch, 3, args.side, args.side))
    y = torch.randint(0, 2, (args.batch, args.side, args.side))

    def step():
        opt.zero_grad(set_to_none=True)
        with numerics.autocast():
            logits = forward(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        loss.backward()
        opt.step()

    return step


def fold_batch_norm(net: torch.nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d in a Sequential into that convolution (eval mode);
    returns how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for module in net.modules():
        if isinstance(module, torch.nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                conv, norm = module._modules[first], module._modules[second]
                if isinstance(conv, torch.nn.Conv2d) and isinstance(norm, torch.nn.BatchNorm2d):
                    module._modules[first] = fuse_conv_bn_eval(conv, norm)
                    module._modules[second] = torch.nn.Identity()
                    folded += 1
    return folded


def inference_batch(kind: str, args) -> callable:
    net = network(args.channels, args.depth).eval()
    if kind.endswith("+fold") and not fold_batch_norm(net):
        raise SystemExit("cpu_candidates: no batch norm to fold in this network")
    x = torch.randn(args.infer_batch, 3, args.side, args.side)
    if kind == "onnxruntime":
        import onnxruntime as ort

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, x, buf, input_names=["input"], output_names=["logits"], dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        return lambda: session.run(None, feed)
    numerics = numerics_of(kind)
    net, x = numerics.prepare_model(net), numerics.prepare_input(x)
    forward = compile_module(net) if "compile" in kind else net

    def batch():
        with torch.no_grad(), numerics.autocast():
            forward(x)

    return batch


def counted_flops(args) -> tuple[float, float]:
    """FLOPs of a training step (forward + backward) and of an inference batch, by ``FlopCounterMode``."""
    from machine import train_step_flops
    from torch.utils.flop_counter import FlopCounterMode

    net = network(args.channels, args.depth)
    x = torch.randn(args.batch, 3, args.side, args.side)
    y = torch.randint(0, 2, (args.batch, args.side, args.side))
    forward, backward = train_step_flops(net, x, y, torch.nn.functional.cross_entropy)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net.eval()(torch.randn(args.infer_batch, 3, args.side, args.side))
    return forward + backward, counter.get_total_flops()


def measure(what: str, candidates: dict, rounds: int, steps: int, flops: float, ceilings: tuple) -> None:
    for name, fn in candidates.items():
        started = time.perf_counter()
        fn()
        fn()
        print(f"  {name}: warm-up {time.perf_counter() - started:.1f} s", flush=True)
    seconds = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            started = time.perf_counter()
            for _ in range(steps):
                candidates[name]()
            seconds[name].append((time.perf_counter() - started) / steps)
    peak, densest = ceilings
    print(f"  {what} ({flops / 1e9:.2f} GFLOP a call): median ms per call; speed-up over eager per round; "
          f"GFLOP/s as % of the {peak:.0f} nominal peak / of the {densest:.0f} GFLOP/s densest conv")  # fmt: skip
    for name in names:
        ratios = [e / s for e, s in zip(seconds["eager"], seconds[name])]
        median = statistics.median(seconds[name])
        rate = flops / median / 1e9
        print(f"    {name:24s} {median * 1e3:8.1f} ms   {spread(ratios)}   {rate:6.1f} GFLOP/s = "
              f"{100 * rate / peak:3.0f}% / {100 * rate / densest:3.0f}%")  # fmt: skip


def profile(args) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = training_step("eager", args)
    for _ in range(2):
        step()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8, help="training batch (default: 8)")
    ap.add_argument("--infer-batch", type=int, default=4, help="inference windows per batch (default: 4)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="calls per measurement (default: 3)")
    ap.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--profile", action="store_true", help="also profile an eager training step")
    args = ap.parse_args(argv)
    isolate_inductor_cache()
    print(machine_line())
    lines, onednn = isa_lines(resolve_numerics("auto", "cpu").label)
    print("\n".join(lines))
    emulated = any(os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"))
    print(
        f"unet {args.channels} channels, depth {args.depth}, {args.side}², {args.rounds} rounds × {args.steps} calls"
    )
    peak, densest = fp32_peak(onednn).gflops, densest_conv_gflops()
    print(
        f"nominal fp32 peak {peak:.0f} GFLOP/s; measured densest conv {densest:.0f} GFLOP/s (3×3, 256 ch, 56²)"
    )
    train_flops, infer_flops = counted_flops(args)
    kinds = ["eager", "channels_last"] + (["compile", "compile+channels_last"] if args.compile else [])
    kinds += (["bf16+channels_last"] if cpu_native_bf16() else []) + ["amp auto"]
    measure(
        f"training step, batch {args.batch}",
        {k: training_step(k, args) for k in kinds},
        args.rounds,
        args.steps,
        train_flops,
        (peak, densest),
    )
    inference = {k: inference_batch(k, args) for k in [*kinds, "channels_last+fold", "onnxruntime"]}
    measure(
        f"inference, batch {args.infer_batch}",
        inference,
        args.rounds,
        args.steps,
        infer_flops,
        (peak, densest),
    )
    if emulated:
        print(
            "  (onnxruntime ignores the ISA caps: its figure is for this CPU's own ISA, not the emulated one)"
        )
    if args.profile:
        profile(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
