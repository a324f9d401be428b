"""Where a command may write: checks on an output folder, and building it beside its place atomically."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from unetkit import atomic
from unetkit.errors import FormatError


def check_output_folder(out, *, sources: Iterable = (), resume: bool = False) -> Path:
    """Refuse an output that is an existing file, that is, contains or lies inside one of the input folders
    ``sources``, or that is a non-empty folder (unless ``resume``). Returns ``out`` as a Path."""
    out = Path(out)
    for src in sources:
        a, b = out.resolve(), Path(src).resolve()
        if a == b or b in a.parents or a in b.parents:
            raise FormatError(f"refusing to write into the source project or input folder {src}", file=out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FormatError("output path exists and is not a folder", file=out)
    if not resume and out.is_dir() and any(out.iterdir()):
        raise FormatError("output folder exists and is not empty (refusing to overwrite)", file=out)
    return out


@contextmanager
def new_output_folder(out, *, sources: Iterable = ()) -> Iterator[Path]:
    """Check ``out`` and yield a temporary sibling to fill; it becomes ``out`` when the block ends normally and
    is removed when it raises, so a failed command leaves nothing behind."""
    out = check_output_folder(out, sources=sources)
    try:
        with atomic.write_folder(out) as staging:
            yield staging
    except FileExistsError as exc:  # someone else wrote there meanwhile
        raise FormatError(str(exc), file=out) from None
