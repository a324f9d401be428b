"""The studio's workspace: one folder holding projects, runs, models and the studio's own state.

Every name a client sends is workspace-relative and goes through :meth:`Workspace.resolve`, which refuses
absolute paths, ``..``, NUL bytes and symlinks that lead out of the folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from unetkit.studio.errors import StudioError

STATE_DIR = ".studio"
RUNS_DIR = "runs"
MODELS_DIR = "models"
NOT_PROJECTS = (STATE_DIR, RUNS_DIR, MODELS_DIR)  # top-level folders never searched for projects
META_FILE = "meta.json"
CARD_FILE = "config.json"  # a checkpoint folder's model card (unetkit.models.card.CONFIG_FILE)
RUN_MARKERS = ("train_config.json", "auto-state.json", "checkpoints/best.json", "checkpoints/last.json")
ORIGINAL_WEIGHTS = ("model.pt", "model.pth")
SEARCH_DEPTH = 2


class Workspace:
    """A workspace folder; ``root`` is created if missing."""

    def __init__(self, root):
        self.root = Path(os.path.realpath(root))
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.root / STATE_DIR

    # ---------------------------------------------------------------- names → paths
    def resolve(self, rel: str, *, must_exist: bool = True, kind: str | None = None) -> Path:
        """The real path of workspace-relative ``rel`` ("" or "." is the root).

        403 ``outside_workspace`` for absolute paths, ``..``, NUL bytes, or a real path outside the root;
        404 ``not_found`` when ``must_exist`` and it is missing; ``kind`` "dir"/"file" also checks the type.
        """
        if not isinstance(rel, str) or "\x00" in rel:
            raise StudioError(403, "outside_workspace", "the path contains a NUL byte")
        parts = rel.replace("\\", "/").split("/")
        if rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":") or ".." in parts:
            raise StudioError(
                403, "outside_workspace", f"{rel!r}: give a path inside the workspace, without '..'"
            )
        clean = PurePosixPath(*[p for p in parts if p not in ("", ".")])
        real = Path(os.path.realpath(self.root.joinpath(clean)))
        if not real.is_relative_to(self.root):
            raise StudioError(403, "outside_workspace", f"{rel!r} leads outside the workspace")
        if must_exist and not real.exists():
            raise StudioError(404, "not_found", f"{rel!r} does not exist in the workspace")
        if real.exists() and kind == "dir" and not real.is_dir():
            raise StudioError(400, "invalid_input", f"{rel!r} is not a folder")
        if real.exists() and kind == "file" and not real.is_file():
            raise StudioError(400, "invalid_input", f"{rel!r} is not a file")
        return real

    def rel(self, path) -> str:
        """``path`` (inside the workspace) as the workspace-relative POSIX name clients use."""
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.root):
            raise StudioError(403, "outside_workspace", f"{path} is outside the workspace")
        return real.relative_to(self.root).as_posix() or "."

    def new_output(self, rel: str) -> Path:
        """The path for a new output ``rel``: inside, not the root, and free (409 ``exists`` otherwise)."""
        path = self.resolve(rel, must_exist=False)
        if path == self.root or path.is_relative_to(self.state_dir):
            raise StudioError(403, "outside_workspace", f"{rel!r} cannot be an output name")
        if path.exists() or path.is_symlink():
            raise StudioError(409, "exists", f"{rel!r} already exists; choose another name")
        return path

    def new_name(self, base: str) -> str:
        """``base`` if free, else the first free ``base-2``, ``base-3``, ... (workspace-relative)."""
        self.resolve(base, must_exist=False)
        n, name = 1, base
        while self.resolve(name, must_exist=False).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    # ---------------------------------------------------------------- what the workspace holds
    def projects(self) -> list[str]:
        """Folders (to depth 2, outside .studio/runs/models) holding a ``meta.json``, sorted."""
        found = self._folders(self.root, SEARCH_DEPTH, skip=NOT_PROJECTS, hit=_is_project)
        return sorted(self._name(p) for p in found)

    def runs(self) -> list[str]:
        """Folders under runs/ and models/ (to depth 2) holding a training or auto run, a checkpoint or an
        original Supervisely checkpoint, sorted."""
        found = []
        for top in (RUNS_DIR, MODELS_DIR):
            base = self.root / top
            if base.is_dir() and _inside(base, self.root):
                found += [
                    self._name(p) for p in self._folders(base, SEARCH_DEPTH, skip=(), hit=is_run_folder)
                ]
        return sorted(found)

    def _name(self, path: Path) -> str:
        """The name a listed folder is found under (symlinks inside the workspace keep their own name)."""
        return path.relative_to(self.root).as_posix()

    def _folders(self, base: Path, depth: int, *, skip, hit) -> Iterator[Path]:
        """Sub-folders of ``base`` down to ``depth`` for which ``hit`` holds (not descending into hits)."""
        try:
            children = sorted(base.iterdir())
        except OSError:
            return
        for child in children:
            if child.name.startswith(".") or child.name in skip or not child.is_dir():
                continue
            if not _inside(child, self.root):
                continue
            if hit(child):
                yield child
            elif depth > 1:
                yield from self._folders(child, depth - 1, skip=(), hit=hit)


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(root)


def _is_project(folder: Path) -> bool:
    return (folder / META_FILE).is_file()


def is_run_folder(folder: Path) -> bool:
    """A training/auto run folder, or a checkpoint folder (unetkit or original Supervisely)."""
    if any((folder / marker).is_file() for marker in RUN_MARKERS):
        return True
    return (folder / CARD_FILE).is_file() and any((folder / w).is_file() for w in ORIGINAL_WEIGHTS)
