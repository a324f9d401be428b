"""The studio's shared state (workspace, task queue, settings) and the FastAPI dependency that hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from unetkit.studio.workspace import Workspace

if TYPE_CHECKING:
    from unetkit.studio.tasks import TaskQueue


@dataclass
class Studio:
    """What every endpoint needs: ``Depends(get_studio)``."""

    workspace: Workspace
    tasks: TaskQueue
    token: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    host: str = "127.0.0.1"  # the address the studio binds; `serve` tasks bind it too


def get_studio(request: Request) -> Studio:
    """The app's :class:`Studio` (``request.app.state.studio``), as a FastAPI dependency."""
    return request.app.state.studio
