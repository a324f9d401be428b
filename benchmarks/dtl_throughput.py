"""DTL throughput: images/s of the tutorial vessels graph with 1 and 2 workers beside the I/O floor.

The I/O floor reads and writes the same number of items as the graph writes, without any layer: decode a
source image and parse its annotation, write both into a new project (image re-encoded, annotation with its
bitmaps re-encoded). The ratio graph / floor says
how close the engine gets to pure I/O.

    .venv/bin/python benchmarks/dtl_throughput.py [--images 6] [--size 0] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2

from unetkit.dtl.executor import load_inputs, run_graph
from unetkit.dtl.graph import load_graph
from unetkit.project import Project, ProjectWriter, read_image
from unetkit.project.imports import import_masks

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "examples" / "dtl" / "vessels_train.json"
CHASE = ROOT.parent / "shared" / "data" / "chasedb1"


def build_project(tmp: Path, n_images: int, size: int) -> Path:
    """A `vessels` project of the first ``n_images`` CHASE DB1 images (``size`` > 0: resized square)."""
    raw = tmp / "raw"
    raw.mkdir()
    stems = sorted(p.stem for p in CHASE.glob("Image_*.jpg"))[:n_images]
    for stem in stems:
        if size:
            img = cv2.imread(str(CHASE / f"{stem}.jpg"))
            cv2.imwrite(str(raw / f"{stem}.jpg"), cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
            mask = cv2.imread(str(CHASE / f"{stem}_1stHO.png"), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(
                str(raw / f"{stem}_1stHO.png"),
                cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST),
            )
        else:
            shutil.copyfile(CHASE / f"{stem}.jpg", raw / f"{stem}.jpg")
            shutil.copyfile(CHASE / f"{stem}_1stHO.png", raw / f"{stem}_1stHO.png")
    import_masks(raw, raw, tmp / "vessels")
    return tmp / "vessels"


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_vessels(project: Path, out: Path, workers: int) -> tuple[int, float, float]:
    """(images written, wall seconds, CPU seconds) of one run of the tutorial graph."""
    projects = load_inputs([project])
    graph = load_graph(GRAPH, {p.name: p.meta for p in projects})
    start, cpu = time.perf_counter(), cpu_seconds()
    report = run_graph(graph, projects, out, seed=0, workers=workers, progress=False)
    return report.written, time.perf_counter() - start, cpu_seconds() - cpu


def io_floor(project: Path, out: Path, count: int) -> tuple[float, float]:
    """(wall, CPU) seconds to read + write ``count`` items without any layer: decode each source image and
    parse its annotation, then write both into a new project (image re-encoded, annotation serialised)."""
    source = Project.read(project)
    items = list(source.items())
    start, cpu = time.perf_counter(), cpu_seconds()
    writer = ProjectWriter(out, source.meta)
    for i in range(count):
        item = items[i % len(items)]
        ann = item.read_annotation(source.meta)
        writer.add_item("ds0", f"{i}_{item.name}", read_image(item.image_path), ann)
    return time.perf_counter() - start, cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=6, help="input images (the tutorial uses 6)")
    parser.add_argument(
        "--size", type=int, default=0, help="resize inputs to SIZE x SIZE (0: original 999x960)"
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the fastest is kept")
    args = parser.parse_args(argv)
    if not CHASE.is_dir():
        print(f"CHASE DB1 not found at {CHASE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dtl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        project = build_project(tmp, args.images, args.size)
        size = "original" if not args.size else f"{args.size}x{args.size}"
        print(f"vessels graph on {args.images} CHASE DB1 images ({size}); seed 0; best of {args.repeat}")
        runs = iter(range(10**6))

        def best(fn):
            return min((fn(next(runs)) for _ in range(args.repeat)), key=lambda r: r[-2])

        results = []
        for workers in (int(w) for w in args.workers.split(",")):
            n, wall, cpu = best(lambda k, w=workers: run_vessels(project, tmp / f"out_{k}", w))
            results.append((f"graph, {workers} worker(s)", n, wall, cpu))
        written = results[0][1]
        floor_s, floor_cpu = best(lambda k: io_floor(project, tmp / f"floor_{k}", written))
        floor_rate = written / floor_s
        print(f"{'run':<22}{'images':>8}{'wall s':>9}{'CPU s':>8}{'images/s':>10}{'ratio to floor':>16}")
        for name, n, seconds, cpu in [("I/O floor (no layer)", written, floor_s, floor_cpu), *results]:
            rate = n / seconds
            print(f"{name:<22}{n:>8}{seconds:>9.2f}{cpu:>8.2f}{rate:>10.1f}{rate / floor_rate:>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
