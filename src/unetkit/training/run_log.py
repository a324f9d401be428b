"""What a run writes for people: metrics.jsonl, TensorBoard events, charts, a progress bar and a summary."""

from __future__ import annotations

import io
import json
import logging
import math
import time
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table

from unetkit.progress import progress_bar
from unetkit.project import atomic_write_bytes
from unetkit.training.charts import read_metrics, write_charts

log = logging.getLogger("unetkit.training")
METRICS_FILE = "metrics.jsonl"
CHARTS_FILE = "charts.png"
CHARTS_MIN_INTERVAL = 30.0  # seconds between chart rewrites at validations (they cost ~0.3 s)
PREVIEWS_DIR = (
    "previews"  # previews/<iteration:08d>.png: input | ground truth | prediction at each validation
)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON: NaN/inf become null
    return value


class RunLog:
    """Rank-0 logging. ``metrics.jsonl`` lines: {"type": "train"|"val"|"checkpoint"|"lr"|"nonfinite", "epoch",
    "iteration", "metrics": {...}, ...}. On resume the file is cut back to the last checkpoint's offset."""

    def __init__(
        self,
        run_dir: Path,
        *,
        resume_offset: int | None,
        purge_step: int | None,
        progress: bool,
        quiet: bool = False,
    ):
        self.run_dir = run_dir
        self.quiet = quiet
        self.path = run_dir / METRICS_FILE
        if resume_offset is not None and self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(resume_offset)
        elif resume_offset is None:
            self.path.unlink(missing_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # line-buffered: `tail -f` works
        self.records = read_metrics(self.path)
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge_step)
        self.console = Console(stderr=True)
        self.progress = None
        self._task = None
        self._show_progress = progress
        self._speed_window: list[tuple[float, int]] = []
        self._last_charts = -math.inf

    # ---------------------------------------------------------------- records
    def write(self, record: dict) -> None:
        record = {k: _clean(v) for k, v in record.items()}
        if "metrics" in record:
            record["metrics"] = {k: _clean(float(v)) for k, v in record["metrics"].items()}
        self._fh.write(json.dumps(record) + "\n")
        self.records.append(record)
        if record["type"] in ("train", "val"):
            step = record["iteration"]
            for name, value in record["metrics"].items():
                if value is not None:
                    self.tb.add_scalar(f"{record['type']}/{name}", value, step)
            if "lr" in record:
                self.tb.add_scalar("lr", record["lr"], step)

    def image(self, tag: str, picture, step: int) -> None:
        """Show an H×W×3 uint8 picture in TensorBoard under ``tag`` at ``step``."""
        self.tb.add_image(tag, picture, step, dataformats="HWC")

    def preview(self, picture, step: int) -> Path:
        """The validation preview at ``step``: in TensorBoard and as ``previews/<step>.png`` (atomic) for the studio."""
        self.image("val/predictions", picture, step)
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG", compress_level=3)
        path = self.run_dir / PREVIEWS_DIR / f"{step:08d}.png"
        atomic_write_bytes(path, buffer.getvalue())
        return path

    def flush(self) -> int:
        """Flush to disk; returns the file size (the resume offset)."""
        self._fh.flush()
        self.tb.flush()
        return self.path.stat().st_size

    def charts(self, force: bool = True) -> None:
        """Rewrite charts.png (at most every CHARTS_MIN_INTERVAL seconds unless ``force``)."""
        now = time.perf_counter()
        if not force and now - self._last_charts < CHARTS_MIN_INTERVAL:
            return
        self._last_charts = now
        try:
            write_charts(self.records, self.run_dir / CHARTS_FILE)
        except Exception as exc:  # charts are a convenience; never kill a run
            log.warning("could not write charts: %s", exc)

    # ---------------------------------------------------------------- progress
    def start_progress(self, total: int, done: int) -> None:
        if not self._show_progress:
            return
        self.progress = progress_bar(
            "[bold]train[/] epoch {task.fields[epoch]}",
            "{task.fields[speed]} img/s  loss {task.fields[loss]}",
            console=self.console,
        )
        self.progress.start()
        self._task = self.progress.add_task(
            "train", total=total, completed=done, epoch="0.00", speed="-", loss="-"
        )

    def set_total(self, total: int) -> None:
        """The run's new length (after a refit)."""
        if self.progress is not None:
            self.progress.update(self._task, total=total)

    def advance(self, epoch: float, images: int, loss: float | None) -> None:
        now = time.perf_counter()
        self._speed_window.append((now, images))
        self._speed_window = self._speed_window[-50:]
        if self.progress is None:
            return
        speed = "-"
        if len(self._speed_window) > 1:
            dt = now - self._speed_window[0][0]
            n = sum(i for _, i in self._speed_window[1:])
            speed = f"{n / dt:.1f}" if dt > 0 else "-"
        self.progress.update(
            self._task,
            advance=1,
            epoch=f"{epoch:.2f}",
            speed=speed,
            loss="-" if loss is None else f"{loss:.4f}",
        )

    def message(self, text: str) -> None:
        if self.quiet:
            return
        (self.progress.console if self.progress else self.console).print(text)

    # ---------------------------------------------------------------- end
    def summary(self, info: dict) -> None:
        if self.quiet:
            return
        table = Table(title="training summary", show_header=False)
        for key, value in info.items():
            table.add_row(key, str(value))
        self.console.print(table)

    def close(self) -> None:
        """Stop the progress bar and close the files (charts and summary still work afterwards)."""
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if not self._fh.closed:
            self._fh.close()
            self.tb.close()
