"""Scale-out benchmark: DTL and inference images/s on the local engine (1 and 2 workers) and on Ray (1 and 2
nodes), in one run, on this machine.

A Ray cluster with one node (the head, 1 CPU) is started with `ray start`; runs of local with 1 worker and Ray
with 1 node alternate (interleaved pairs, ``--repeat`` times); then a second node (1 CPU) joins and local with
2 workers alternates with Ray on 2 nodes. Every configuration runs a small and a large project, so that
``seconds = fixed + per_image × images`` separates Ray's fixed cost per run (connect, node check, worker and
actor start) from its cost per image. Prints the machine and threads, images/s, min/median/max of the per-pair
ratios Ray / local, Ray's overhead per image and the project size from which Ray beats the local engine here.

DTL: synthetic 128 px fundus images, graph data → random crop → noise → save (crop + original: 2 items per
image). Inference: the same images, a random-weight `unet` (16 channels, depth 4, 128 px input), full_image.

    .venv/bin/python benchmarks/scale.py [--small 8] [--large 192] [--repeat 3] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from infer_throughput import make_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the test suite's local Ray cluster
from ray_local import LocalRayCluster  # noqa: E402
from unetkit.demo.pipeline import write_sample_project
from unetkit.dtl.executor import load_inputs, run_graph
from unetkit.dtl.graph import build_graph
from unetkit.inference import InferenceConfig, Predictor
from unetkit.inference.batch import infer_project
from unetkit.inference.ray_engine import RayInference
from unetkit.models.numerics import cpu_model_name

GRAPH = [
    {"action": "data", "src": ["bench/*"], "dst": "$s", "settings": {"classes_mapping": "default"}},
    {"action": "crop", "src": ["$s"], "dst": "$c",
     "settings": {"random_part": {"width": {"min_percent": 60, "max_percent": 90},
                                  "height": {"min_percent": 60, "max_percent": 90}}}},
    {"action": "noise", "src": ["$c"], "dst": "$n", "settings": {"mean": 0, "std": 8}},
    {"action": "supervisely", "src": ["$s", "$n"], "dst": "out", "settings": {}},
]  # fmt: skip


class Bench:
    def __init__(self, tmp: Path, args):
        self.tmp, self.args, self.runs = tmp, args, 0
        self.projects = {n: write_sample_project(tmp / f"p{n}" / "bench", "img", list(range(n)), args.size).path
                         for n in (args.small, args.large)}  # fmt: skip
        ns = argparse.Namespace(model="unet", base_channels=16, depth=4, input=args.size)
        self.checkpoint = make_checkpoint(tmp / "ckpt", ns)

    def _out(self) -> Path:
        self.runs += 1
        return self.tmp / f"out{self.runs}"

    def dtl(self, n: int, engine: str, workers: int, address: str) -> float:
        """Wall seconds of one DTL run over the ``n``-image project (output removed afterwards)."""
        projects = load_inputs([self.projects[n]])
        graph = build_graph(GRAPH, {p.name: p.meta for p in projects})
        out, start = self._out(), time.perf_counter()
        report = run_graph(graph, projects, out, seed=0, workers=workers, progress=False, engine=engine,
                           address=address if engine == "ray" else None)  # fmt: skip
        seconds = time.perf_counter() - start
        assert report.written == 2 * n and not report.skipped, report
        shutil.rmtree(out)
        return seconds

    def infer(self, n: int, engine: str, workers: int, address: str) -> float:
        """Wall seconds of one inference run (model loading included) over the ``n``-image project."""
        out, start = self._out(), time.perf_counter()
        torch.set_num_threads(workers)
        predictor = Predictor.from_checkpoint(self.checkpoint, device="cpu")
        run = RayInference(self.checkpoint, InferenceConfig(), address=address) if engine == "ray" else None
        stats = infer_project(predictor, self.projects[n], out, InferenceConfig(), workers=workers,
                              batch_size=4, progress=False, run=run)  # fmt: skip
        seconds = time.perf_counter() - start
        assert stats.images == n
        shutil.rmtree(out)
        return seconds


def phase(bench: Bench, address: str, workers: int, repeat: int) -> dict:
    """Interleaved pairs (local with ``workers``, Ray): {(task, n, engine): [seconds, ...]}."""
    times: dict = {}
    for _ in range(repeat):
        for task in ("dtl", "infer"):
            for n in (bench.args.small, bench.args.large):
                for engine in ("local", "ray"):
                    seconds = getattr(bench, task)(n, engine, workers, address)
                    times.setdefault((task, n, engine), []).append(seconds)
    return times


def fit(times: dict, task: str, engine: str, small: int, large: int) -> tuple[float, float]:
    """(fixed seconds per run, seconds per image) from the medians of the small and large runs."""
    ts, tl = (statistics.median(times[(task, n, engine)]) for n in (small, large))
    per_image = (tl - ts) / (large - small)
    return ts - per_image * small, per_image


def report(times: dict, label: str, args) -> dict:
    print(f"\n{label}")
    print(
        f"{'task':<7}{'images':>7}{'local img/s':>13}{'Ray img/s':>11}{'Ray/local min':>15}{'median':>8}{'max':>7}"
    )
    for task in ("dtl", "infer"):
        for n in (args.small, args.large):
            local, ray = times[(task, n, "local")], times[(task, n, "ray")]
            ratios = sorted(lo / r for lo, r in zip(local, ray))  # rate ratio = time ratio inverted
            print(f"{task:<7}{n:>7}{n / statistics.median(local):>13.1f}{n / statistics.median(ray):>11.1f}"
                  f"{ratios[0]:>15.2f}{statistics.median(ratios):>8.2f}{ratios[-1]:>7.2f}")  # fmt: skip
    fits = {}
    for task in ("dtl", "infer"):
        (a_l, b_l), (a_r, b_r) = (fit(times, task, e, args.small, args.large) for e in ("local", "ray"))
        fits[task] = (a_l, b_l, a_r, b_r)
        even = f"{(a_r - a_l) / (b_l - b_r):.0f} images" if b_l > b_r else "never (Ray costs more per image)"
        print(f"{task}: local {a_l:.2f} s + {1000 * b_l:.1f} ms/image; Ray {a_r:.2f} s + {1000 * b_r:.1f} ms/image; "
              f"Ray overhead {1000 * (b_r - b_l):+.1f} ms/image, {a_r - a_l:+.2f} s/run; Ray pays off from: {even}")  # fmt: skip
    return fits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=8)
    parser.add_argument("--large", type=int, default=192)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    print(f"machine: {cpu_model_name()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}, torch {torch.__version__}")  # fmt: skip
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; local inference uses as many "
          "torch threads as workers, each Ray node 1 CPU (1 thread); the Ray driver writes on this machine too")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="unetkit-scale-"))
    cluster = LocalRayCluster()
    try:
        bench = Bench(tmp, args)
        cluster.start(nodes=1)
        one = phase(bench, cluster.address, 1, args.repeat)
        cluster.add_node()
        two = phase(bench, cluster.address, 2, args.repeat)
        report(one, "local 1 worker vs Ray 1 node (1 CPU)", args)
        report(two, "local 2 workers vs Ray 2 nodes (1 CPU each)", args)
        print("\nscaling (large project, median images/s): ", end="")
        parts = []
        for task in ("dtl", "infer"):
            for engine in ("local", "ray"):
                t1, t2 = (statistics.median(t[(task, args.large, engine)]) for t in (one, two))
                parts.append(f"{task} {engine} 2/1 = {t1 / t2:.2f}")
        print("; ".join(parts))
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
