"""What a DTL run produces: outputs of the save layer, the report, the writer that names and writes them,
and the progress bar. Shared by the local and the Ray engines.

Original behaviour: docs/original-behaviour.md, "DTL output naming".
"""

from __future__ import annotations

import contextlib
import logging
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.dtl.element import ImageRef
from unetkit.project import Project, ProjectWriter, write_image

log = logging.getLogger(__name__)

SUFFIX_CHARS = np.array(list(string.ascii_letters + string.digits))


@dataclass
class Skipped:
    """An input image skipped because processing it raised."""

    project: str
    dataset: str
    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.project}/{self.dataset}/{self.item}: {self.reason}"


@dataclass
class RunReport:
    """Counts of a finished run."""

    out_dir: Path
    inputs: int = 0
    written: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    dropped_objects: int = 0  # objects of the written items that a geometric layer could not transform
    per_dataset: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    workers: int = 1  # worker processes, or the cluster's CPUs on Ray
    engine: str = "local"
    nodes: int = 1
    per_node: Counter = field(default_factory=Counter)  # Ray: input images processed per node id


@dataclass
class SerializedAnnotation:
    """An annotation already converted to JSON in a worker (bitmap encoding is the costly part), written
    as is by the parent; it offers what ProjectWriter.add_item uses: height, width, to_json()."""

    height: int
    width: int
    json: dict

    def to_json(self) -> dict:
        return self.json


@dataclass
class Output:
    """One element reaching the save layer, ready to be written."""

    project: str
    dataset: str
    out_dataset: str | None
    stem: str
    ext: str
    ann: object
    image: ImageRef | None = None  # in-process
    image_file: Path | None = None  # from a worker: source file or encoded temp file
    temp_image: bool = False
    extras: dict = field(default_factory=dict)  # folder -> ndarray (in-process) or temp Path (worker)
    dropped: int = 0  # objects left out on the way (see Element.dropped)


def format_reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class OutputWriter:
    """Decides output dataset / item names (docs/original-behaviour.md, "DTL output naming") and writes items
    in the order given."""

    def __init__(self, writer: ProjectWriter, projects: list[Project], seed: int | None):
        self.writer = writer
        self.rng = np.random.default_rng(seed)
        owners: dict[str, set[str]] = {}
        for p in projects:
            for ds in p.datasets:
                owners.setdefault(ds.name, set()).add(p.name)
        self.shared = {ds for ds, names in owners.items() if len(names) > 1}
        self.used: dict[str, set[str]] = {}

    def _unique(self, dataset: str, stem: str) -> str:
        used = self.used.setdefault(dataset, set())
        name = stem
        while name in used:
            name = stem + "_" + "".join(self.rng.choice(SUFFIX_CHARS, 10))
        used.add(name)
        return name

    def write(self, out: Output) -> str:
        dataset = out.out_dataset or (
            f"{out.project}__{out.dataset}" if out.dataset in self.shared else out.dataset
        )
        stem = self._unique(dataset, out.stem)
        image = (
            out.image_file
            if out.image_file is not None
            else (out.image.get() if out.image.modified else out.image.path)
        )
        item = self.writer.add_item(dataset, stem + out.ext, image, out.ann)
        if out.temp_image:
            Path(out.image_file).unlink(missing_ok=True)
        ds_dir = item.image_path.parent.parent
        for folder, extra in out.extras.items():
            target = ds_dir / folder / f"{stem}.png"
            atomic.make_folder(target.parent)
            if isinstance(extra, Path):
                extra.replace(target)
            else:
                write_image(target, extra)
        return dataset


@contextlib.contextmanager
def progress_bar(enabled: bool, total: int):
    """A rich progress bar over the input images; yields ``advance(written)``."""
    if not enabled:
        yield lambda written: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]dtl"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images · {task.fields[written]} written"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("dtl", total=total, written=0)
        yield lambda written: bar.update(task, advance=1, written=written)


def write_results(
    out_writer: OutputWriter, projects: list[Project], jobs: list, results, report: RunReport, progress: bool
) -> None:
    """Write each job's outputs in job order; a job that raised (or whose output cannot be written) is
    recorded in ``report.skipped`` and logged, never fatal."""
    with progress_bar(progress, len(jobs)) as advance:
        for (project_idx, item, _), (outputs, job_error) in zip(jobs, results):
            error = None
            for out in outputs:
                try:
                    report.per_dataset[out_writer.write(out)] += 1
                except Exception as exc:  # e.g. a layer produced an annotation of the wrong size
                    error = format_reason(exc)
                    break
                report.written += 1
                report.dropped_objects += out.dropped
            error = error or job_error or getattr(outputs, "error", None)
            if error is not None:
                skipped = Skipped(projects[project_idx].name, item.dataset, item.name, error)
                log.error("Image was skipped because some error occurred: %s", skipped)
                report.skipped.append(skipped)
            advance(report.written)
