"""Finding a checkpoint folder and reading its card without torch: what ``--model`` may name (a checkpoint folder,
a training run folder, a ``best`` / ``last`` pointer). The studio and other torch-free readers use this module."""

from __future__ import annotations

import json
from pathlib import Path

from unetkit.errors import FormatError, UnetkitError
from unetkit.models.card import CONFIG_FILE, ModelCard


def resolve_checkpoint_dir(path) -> Path:
    """A checkpoint folder from what users pass as ``--model``.

    A checkpoint folder (holding ``config.json``) is returned as is; a training run folder gives its best
    checkpoint (``RUN/checkpoints/best.json``, else ``last.json``); ``RUN/checkpoints/best`` or ``.../last``
    follow that pointer file. Anything else is returned unchanged (and fails with a clear error when read).
    """
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    pointers = []
    if path.name in ("best", "last") and not path.exists():
        pointers.append(path.parent / f"{path.name}.json")
    pointers += [path / "checkpoints" / "best.json", path / "checkpoints" / "last.json"]
    for pointer in pointers:
        if pointer.is_file():
            try:
                target = json.loads(pointer.read_text(encoding="utf-8"))["path"]
            except (ValueError, KeyError, TypeError) as exc:
                raise FormatError(
                    f"not a checkpoint pointer: {exc}", file=pointer, json_path="$.path"
                ) from None
            run = pointer.parent.parent  # pointers name the folder relative to the run folder
            if not isinstance(target, str) or not (run / target).resolve().is_relative_to(run.resolve()):
                raise FormatError(
                    f"the pointer leads outside its run folder {run} ({target!r}); refusing to follow it",
                    file=pointer,
                    json_path="$.path",
                )
            return run / target
    return path


def read_card(dir) -> ModelCard:
    """The model card of a checkpoint folder (FormatError with the JSON path on problems).

    ``dir`` may also be a training run folder or a ``best`` / ``last`` pointer (see resolve_checkpoint_dir).
    """
    dir = resolve_checkpoint_dir(dir)
    if not dir.is_dir():
        raise UnetkitError("checkpoint folder not found", file=dir)
    return ModelCard.read(dir)
