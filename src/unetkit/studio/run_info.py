"""What the studio shows of a run folder: its summary (from the model card), metrics, previews and files.

A run is a ``unetkit train`` or ``auto`` output folder, or a checkpoint folder (unetkit's or an original
Supervisely one). The card and the best checkpoint come from :mod:`unetkit.models` (imported when first needed:
the pointer reader loads torch); metrics are re-read from ``metrics.jsonl`` here (the studio does not import
training).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from unetkit.errors import UnetkitError
from unetkit.models.card import CONFIG_FILE, ModelCard

METRICS_FILE = "metrics.jsonl"  # unetkit.training.run_log.METRICS_FILE
PREVIEWS_DIR = "previews"  # unetkit.training.run_log.PREVIEWS_DIR: previews/<iteration:08d>.png
AUTO_STATE = "auto-state.json"  # unetkit.auto.state.STATE_FILE
TRAIN_CONFIG = "train_config.json"  # unetkit.training.run_dir.CONFIG_FILE
REPORT_FILE = "report.html"
CHARTS_FILE = "charts.png"
ONNX_FILE = "model.onnx"
MAX_POINTS = 500


def run_kind(folder: Path) -> str:
    """``auto`` (an auto run), ``original`` (an original Supervisely checkpoint) or ``train``."""
    if (folder / AUTO_STATE).is_file() or (folder / "plan.json").is_file():
        return "auto"
    if not (folder / TRAIN_CONFIG).is_file() and (folder / CONFIG_FILE).is_file():
        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return "train"
        return "original" if isinstance(config, dict) and "unetkit" not in config else "train"
    return "train"


def best_checkpoint(folder: Path) -> Path | None:
    """The checkpoint folder ``--model RUN`` would use (best, else last), or None before the first one."""
    from unetkit.models.checkpoint_dir import resolve_checkpoint_dir

    path = resolve_checkpoint_dir(folder)
    return path if (path / CONFIG_FILE).is_file() else None


def read_card(folder: Path) -> ModelCard | None:
    """The model card of the run's best checkpoint, or None when it has none yet."""
    path = best_checkpoint(folder)
    return None if path is None else ModelCard.read(path)


def summary(folder: Path, name: str, rel) -> dict:
    """``{name, path, kind, architecture, classes, best_checkpoint, created, error}`` (``rel``: path → name)."""
    out = {"name": name, "path": str(folder), "kind": run_kind(folder), "architecture": None, "classes": [],
           "best_checkpoint": None, "created": created(folder), "error": None}  # fmt: skip
    try:
        card = read_card(folder)
    except UnetkitError as exc:
        out["error"] = str(exc)
        return out
    if card is None:
        settings = _json(folder / TRAIN_CONFIG) or {}
        section = settings.get("unetkit") if isinstance(settings.get("unetkit"), dict) else {}
        out["architecture"] = section.get("model")
        return out
    out["architecture"] = card.model
    out["classes"] = [c.model_dump() for c in card.classes.classes]
    out["best_checkpoint"] = rel(card.path)
    return out


def created(folder: Path) -> float | None:
    """When the run began: the modification time of its first file (config, state or card)."""
    times = [
        (folder / f).stat().st_mtime
        for f in (TRAIN_CONFIG, AUTO_STATE, CONFIG_FILE)
        if (folder / f).is_file()
    ]
    return min(times) if times else None


def training_folder(folder: Path, fold: int | None = None) -> Path:
    """Where metrics and previews are: the run itself, or for an auto run fold ``fold`` (default: the latest
    fold that has metrics)."""
    folds = folder / "folds"
    if fold is not None:
        return folds / str(fold)
    if (folder / METRICS_FILE).is_file() or not folds.is_dir():
        return folder
    numbered = sorted((int(p.name), p) for p in folds.iterdir() if p.name.isdigit() and p.is_dir())
    with_metrics = [p for _, p in numbered if (p / METRICS_FILE).is_file()]
    return with_metrics[-1] if with_metrics else folder


def metrics(folder: Path, max_points: int = MAX_POINTS) -> dict:
    """``{train: [...], val: [...]}``: rows ``{iteration, epoch, <metric>: value, lr?}``, at most ``max_points``
    each (consecutive rows averaged)."""
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    for record in read_records(folder / METRICS_FILE):
        kind = record.get("type")
        if kind in rows and isinstance(record.get("metrics"), dict):
            row = {"iteration": record.get("iteration"), "epoch": record.get("epoch"), **record["metrics"]}
            if "lr" in record:
                row["lr"] = record["lr"]
            rows[kind].append(row)
    return {kind: binned(values, max_points) for kind, values in rows.items()}


def read_records(path: Path) -> list[dict]:
    """The JSON objects of a JSONL file (torn or foreign lines skipped)."""
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    out.append(record)
    except OSError:
        return []
    return out


def binned(rows: list[dict], max_points: int) -> list[dict]:
    """``rows`` cut into ≤ ``max_points`` consecutive groups: iteration/epoch of each group's last row, the
    other numbers averaged (None values ignored)."""
    if len(rows) <= max_points:
        return rows
    out = []
    for k in range(max_points):
        group = rows[k * len(rows) // max_points : (k + 1) * len(rows) // max_points]
        row = {"iteration": group[-1]["iteration"], "epoch": group[-1]["epoch"]}
        for key in dict.fromkeys(name for r in group for name in r):
            if key not in row:
                values = [
                    r[key] for r in group if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
                ]
                row[key] = sum(values) / len(values) if values else None
        out.append(row)
    return out


def previews(folder: Path) -> list[int]:
    """The iterations that have a validation preview, in order."""
    base = folder / PREVIEWS_DIR
    if not base.is_dir():
        return []
    return sorted(int(p.stem) for p in base.glob("*.png") if p.stem.isdigit())


def files(folder: Path, rel) -> dict:
    """``{report, charts, onnx}``: workspace-relative names of the run's files, None where missing."""
    train = training_folder(folder)
    found = {"report": folder / REPORT_FILE, "charts": train / CHARTS_FILE, "onnx": folder / ONNX_FILE}
    return {key: rel(path) if path.is_file() else None for key, path in found.items()}


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
