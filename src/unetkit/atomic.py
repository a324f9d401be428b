"""Atomic output: a file or a folder is built under a temporary name beside its target and renamed into place.

Readers never see a half-written file or folder, and a failure leaves nothing behind. Every file written here
is 0644 and every folder 0755, whatever the umask or the 0600/0700 that ``mkstemp``/``mkdtemp`` create.
Standard library only: every layer of unetkit may use it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o644
FOLDER_MODE = 0o755


def make_folder(path) -> Path:
    """Create ``path`` and any missing parents, each new one 0755 (existing folders are left as they are)."""
    path = Path(path)
    missing, parent = [], path
    while not parent.is_dir() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # created concurrently by someone else: theirs to set up
        os.chmod(folder, FOLDER_MODE)
    return path


def write_file(path, write: Callable[[BinaryIO], object], *, fsync: bool = False) -> Path:
    """Call ``write(fh)`` on a temporary file beside ``path`` and rename it to ``path`` (mode 0644).

    ``fsync`` flushes the data to disk before the rename (for files that must survive a power cut).
    """
    path = Path(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path, data: bytes, *, fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (mode 0644)."""
    return write_file(path, lambda fh: fh.write(data), fsync=fsync)


def write_json(path, obj, *, indent: int | None = 4, default=None, fsync: bool = False) -> Path:
    """Write ``obj`` as UTF-8 JSON (non-ASCII kept, trailing newline) to ``path`` atomically (mode 0644)."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False, default=default) + "\n"
    return write_bytes(path, text.encode("utf-8"), fsync=fsync)


@contextmanager
def write_folder(path) -> Iterator[Path]:
    """Build a folder: yields a temporary sibling ``.<name>.<random>.tmp`` (0755) to fill; on a normal exit it
    is renamed to ``path``, on an exception it is removed. ``path`` may exist only as an empty folder, which is
    replaced; anything else there raises FileExistsError (before or after the build)."""
    path = Path(path)
    _check_free(path)
    make_folder(path.parent)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(staging, FOLDER_MODE)
        yield staging
        _check_free(path)
        if path.is_dir():
            path.rmdir()
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_free(path: Path) -> None:
    if path.is_symlink() or (path.exists() and (not path.is_dir() or any(path.iterdir()))):
        raise FileExistsError(f"{path} exists and is not an empty folder")
