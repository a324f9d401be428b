"""The CPU speed candidates for fp32 (AVX2 and other CPUs without AMX bf16), measured on ``auto``'s network.

Training step (forward + cross-entropy + backward + Adam) and inference batch of a U-Net as ``auto`` plans it on
a CPU (16 base channels, depth 4, 128² patches; training batch 8, inference batch 4 windows), for each candidate:

* ``eager``: plain fp32 (the floor every ratio is taken against);
* ``channels_last``: the same arithmetic in oneDNN's blocked (channels-last) formats;
* ``compile``: ``torch.compile`` (inductor) as unetkit runs it (``compile_module``), its warm-up printed apart (``--no-compile`` leaves it out);
* ``compile+channels_last``;
* ``onnxruntime`` (inference only): the model exported to ONNX, run by ONNX Runtime. Its MLAS kernels pick the ISA
  from the CPU itself: under ``ATEN_CPU_CAPABILITY``/``ONEDNN_MAX_CPU_ISA`` emulation it still runs AVX-512 code,
  so its ratio is only meaningful on the CPU as it is (the script says so).

Each round measures every candidate back to back, rotating the order; the ratios to eager are per round and the
min / median / max over the rounds are printed, with the CPU and the ISA first. The profile (``--profile``) shows
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
from machine import isa_lines
from ratios import machine_line, spread

from unetkit.models import create_model
from unetkit.models.numerics import compile_module, isolate_inductor_cache, resolve_numerics


def network(channels: int, depth: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", 2, base_channels=channels, depth=depth)


def training_step(kind: str, args) -> callable:
    net = network(args.channels, args.depth)
    cl = "channels_last" in kind
    if cl:
        net = net.to(memory_format=torch.channels_last)
    forward = compile_module(net) if "compile" in kind else net
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(args.batch, 3, args.side, args.side)
    y = torch.randint(0, 2, (args.batch, args.side, args.side))
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    return step


def inference_batch(kind: str, args) -> callable:
    net = network(args.channels, args.depth).eval()
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
    if "channels_last" in kind:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = compile_module(net) if "compile" in kind else net

    def batch():
        with torch.no_grad():
            forward(x)

    return batch


def measure(what: str, candidates: dict, rounds: int, steps: int) -> None:
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
    print(f"  {what}: median ms per call; speed-up over eager per round")
    for name in names:
        ratios = [e / s for e, s in zip(seconds["eager"], seconds[name])]
        print(f"    {name:24s} {statistics.median(seconds[name]) * 1e3:8.1f} ms   {spread(ratios)}")


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
    lines, _ = isa_lines(resolve_numerics("auto", "cpu").label)
    print("\n".join(lines))
    emulated = any(os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"))
    print(
        f"unet {args.channels} channels, depth {args.depth}, {args.side}², {args.rounds} rounds × {args.steps} calls"
    )
    kinds = ["eager", "channels_last"] + (["compile", "compile+channels_last"] if args.compile else [])
    measure(
        f"training step, batch {args.batch}",
        {k: training_step(k, args) for k in kinds},
        args.rounds,
        args.steps,
    )
    inference = {k: inference_batch(k, args) for k in [*kinds, "onnxruntime"]}
    measure(f"inference, batch {args.infer_batch}", inference, args.rounds, args.steps)
    if emulated:
        print(
            "  (onnxruntime ignores the ISA caps: its figure is for this CPU's own ISA, not the emulated one)"
        )
    if args.profile:
        profile(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
