"""The progress bar of long runs (training, project inference)."""

from __future__ import annotations


def progress_bar(title: str, status: str, *, console=None, enabled: bool = True):
    """A rich ``Progress``: ``title``, the bar, done/total, ``status``, elapsed time and ETA.

    ``title`` and ``status`` may name fields of the task (``{task.fields[loss]}``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(title),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(status),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
        transient=False,
    )
