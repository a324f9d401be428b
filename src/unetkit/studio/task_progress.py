"""Reading a task's files cheaply: log chunks, and from the tails progress and the error line."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

TAIL_BYTES = 16 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
AUTO_LINE = re.compile(r"^auto\s+([\d.]+) s \[([\w-]+)\]\s*(.*)$")
PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s?%")
COUNT = re.compile(r"(?<![\d.])(\d+)\s?/\s?(\d+)(?![\d.])")


def tail_lines(path: Path, size: int = TAIL_BYTES) -> list[str]:
    """The last lines of a text file (carriage-return refreshes split like newlines; ANSI codes removed)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            end = fh.tell()
            fh.seek(max(0, end - size))
            data = fh.read()
    except OSError:
        return []
    text = ANSI.sub("", data.decode("utf-8", errors="replace"))
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    return [line for line in lines if line]


def error_line(log: Path) -> str | None:
    """The last line of the log starting with ``error:`` (what the CLI prints for a UnetkitError)."""
    return next((line for line in reversed(tail_lines(log)) if line.startswith("error:")), None)


def progress(task: dict, log: Path, cwd: Path) -> dict | None:
    """``{fraction, text}`` best effort (a train run's metrics, else the log's last progress line), or None."""
    run = task.get("outputs", {}).get("run")
    if task.get("kind") == "train" and isinstance(run, str):
        found = training_progress(cwd / run)
        if found:
            return found
    return log_progress(tail_lines(log))


def training_progress(run: Path) -> dict | None:
    """``epoch e/E`` from the last record of ``RUN/metrics.jsonl`` and the epochs of ``RUN/train_config.json``."""
    try:
        epochs = float(json.loads((run / "train_config.json").read_text(encoding="utf-8"))["epochs"])
        last = next(
            (
                r
                for r in map(_record, reversed(tail_lines(run / "metrics.jsonl", 4096)))
                if r and "epoch" in r
            ),
            None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if last is None or not epochs or not math.isfinite(epochs):
        return None
    epoch = float(last["epoch"])
    return {"fraction": min(max(epoch / epochs, 0.0), 1.0), "text": f"epoch {epoch:.2f}/{epochs:g}"}


def log_progress(lines: list[str]) -> dict | None:
    for line in reversed(lines[-50:]):
        text = line[:160]
        auto = AUTO_LINE.match(line)
        if auto:
            return {"fraction": None, "text": f"[{auto.group(2)}] {auto.group(3)}"[:160]}
        count = COUNT.search(line)
        if count and 0 < int(count.group(2)) and int(count.group(1)) <= int(count.group(2)):
            return {"fraction": int(count.group(1)) / int(count.group(2)), "text": text}
        percent = PERCENT.search(line)
        if percent and float(percent.group(1)) <= 100:
            return {"fraction": float(percent.group(1)) / 100, "text": text}
    return None


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_chunk(path: Path, offset: int, size: int) -> bytes:
    """At most ``size`` bytes of ``path`` from ``offset``, ending on a whole UTF-8 character (b"" if missing)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return whole_characters(fh.read(size))
    except FileNotFoundError:
        return b""


def whole_characters(data: bytes) -> bytes:
    """``data`` without a UTF-8 sequence cut at its end (the next read starts with it)."""
    for cut in range(1, min(4, len(data)) + 1):
        byte = data[-cut]
        if byte & 0xC0 != 0x80:  # the first byte of the last character
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if need <= cut else data[:-cut]
    return data
