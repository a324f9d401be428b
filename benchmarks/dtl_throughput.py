"""DTL throughput: images/s of the tutorial vessels graph with 1 and 2 workers beside the I/O floor.

The I/O floor produces the same output project as the graph with no layer work: it decodes each source image
once and parses each source annotation once, encodes each output that the graph encodes as an image of that
output's own size (a view of a decoded source), links what the graph links (outputs whose file is the unchanged
source), and writes the same annotations (the graph's own outputs, parsed before the clock starts) with the same
meta. The ratio graph / floor says how close the engine gets to pure I/O.

Floor and graph runs are measured in interleaved rounds (the order alternates); each round gives one ratio per
worker count, and the median over the rounds (with min and max) is the figure.

    .venv/bin/python benchmarks/dtl_throughput.py [--images 6] [--size 0] [--workers 1,2] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ratios import machine_line, spread

from unetkit.dtl.executor import load_inputs, run_graph
from unetkit.dtl.graph import load_graph
from unetkit.project import Annotation, Project, ProjectMeta, ProjectWriter, read_image
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


@dataclass
class FloorItem:
    dataset: str
    name: str
    ann: Annotation
    source: int  # index of the source image it is made from / linked to
    linked: bool
    size: tuple[int, int]  # (height, width)


def floor_plan(source: Project, out: Path) -> tuple[ProjectMeta, list[FloorItem]]:
    """What the graph wrote to ``out``: each output's dataset, name, annotation, size and whether its image file
    is a source file linked unchanged (same inode or same bytes)."""
    sources = list(source.items())
    by_inode = {p.image_path.stat().st_ino: i for i, p in enumerate(sources)}
    by_bytes = {p.image_path.read_bytes(): i for i, p in enumerate(sources)}
    result = Project.read(out)
    plan = []
    for k, item in enumerate(result.items()):
        ann = item.read_annotation(result.meta)
        linked = by_inode.get(item.image_path.stat().st_ino)
        if linked is None:
            linked = by_bytes.get(item.image_path.read_bytes())
        origin = linked if linked is not None else k % len(sources)
        plan.append(
            FloorItem(item.dataset, item.name, ann, origin, linked is not None, (ann.height, ann.width))
        )
    return result.meta, plan


def _sized(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An image of the output's size from a decoded source: a view when it fits, else wrapped around."""
    if image.shape[0] >= height and image.shape[1] >= width:
        return image[:height, :width]
    return np.pad(image, ((0, max(0, height - image.shape[0])), (0, max(0, width - image.shape[1])), (0, 0)),
                  mode="wrap")[:height, :width]  # fmt: skip


def io_floor(
    source_dir: Path, out: Path, meta: ProjectMeta, plan: list[FloorItem]
) -> tuple[int, float, float]:
    """(images written, wall, CPU seconds) of producing the graph's output project without any layer."""
    start, cpu = time.perf_counter(), cpu_seconds()
    source = Project.read(source_dir)
    items = list(source.items())
    images = [read_image(it.image_path) for it in items]  # each source decoded once
    for it in items:
        it.read_annotation(source.meta)  # and each source annotation parsed once, as the graph does
    writer = ProjectWriter(out, meta)
    for p in plan:
        image = items[p.source].image_path if p.linked else _sized(images[p.source], *p.size)
        writer.add_item(p.dataset, p.name, image, p.ann)
    return len(plan), time.perf_counter() - start, cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=6, help="input images (the tutorial uses 6)")
    parser.add_argument(
        "--size", type=int, default=0, help="resize inputs to SIZE x SIZE (0: original 999x960)"
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (>= 5)")
    args = parser.parse_args(argv)
    if not CHASE.is_dir():
        print(f"CHASE DB1 not found at {CHASE}", file=sys.stderr)
        return 2
    if args.rounds < 5:
        parser.error("--rounds must be >= 5")
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="dtl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        project = build_project(tmp, args.images, args.size)
        run_vessels(project, tmp / "reference", 1)  # the output project the floor reproduces (untimed)
        meta, plan = floor_plan(Project.read(project), tmp / "reference")
        shutil.rmtree(tmp / "reference")
        linked = sum(p.linked for p in plan)
        size = "original" if not args.size else f"{args.size}x{args.size}"
        print(machine_line(1))
        print(f"vessels graph on {args.images} CHASE DB1 images ({size}); seed 0; {len(plan)} outputs "
              f"({linked} linked, {len(plan) - linked} encoded); {args.rounds} interleaved rounds")  # fmt: skip
        print(f"{'round':<7}{'floor img/s':>12}" + "".join(f"{f'{w} worker(s)':>14}" for w in workers))
        rates: dict[str, list[float]] = {"floor": [], **{str(w): [] for w in workers}}
        cpu: dict[str, list[float]] = {k: [] for k in rates}
        for r in range(args.rounds):
            order = ["floor", *map(str, workers)]
            for name in order if r % 2 == 0 else order[::-1]:
                out = tmp / f"out_{r}_{name}"
                if name == "floor":
                    n, wall, cpu_s = io_floor(project, out, meta, plan)
                else:
                    n, wall, cpu_s = run_vessels(project, out, int(name))
                if n != len(plan):
                    raise SystemExit(f"{name}: wrote {n} images, the reference wrote {len(plan)}")
                rates[name].append(n / wall)
                cpu[name].append(cpu_s)
                shutil.rmtree(out)
            print(
                f"{r:<7}{rates['floor'][-1]:>12.1f}" + "".join(f"{rates[str(w)][-1]:>14.1f}" for w in workers)
            )
        med = statistics.median
        print(f"floor: median {med(rates['floor']):.1f} images/s, {med(cpu['floor']):.2f} CPU s")
        for w in workers:
            ratios = [g / f for g, f in zip(rates[str(w)], rates["floor"])]
            print(f"graph, {w} worker(s): median {med(rates[str(w)]):.1f} images/s, {med(cpu[str(w)]):.2f} CPU s; "
                  f"ratio to the floor {spread(ratios)}")  # fmt: skip
        if len(workers) > 1:
            a, b = str(workers[0]), str(workers[-1])
            ratios = [y / x for x, y in zip(rates[a], rates[b])]
            print(f"{b} workers / {a} worker(s): {spread(ratios)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
