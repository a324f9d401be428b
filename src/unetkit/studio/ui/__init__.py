"""The studio's pages (NiceGUI on the studio's FastAPI app): one small module per page, no logic in them —
every action is a :class:`~unetkit.studio.client.StudioClient` call to the JSON API, in process.

NiceGUI keeps global state (one page registry, one mounted app), so :func:`install` works once per process.
"""

from __future__ import annotations

import importlib

PAGES = ("projects", "project", "item", "dtl", "train", "tasks", "testing", "evaluation", "models")
RECONNECT_TIMEOUT_S = 30.0
_installed: dict = {"app": None}


def install(app) -> None:
    """Mount the pages on the FastAPI ``app`` at ``/`` (call it after the ``/api`` routes are included).

    Once per process: calling it again with the same app does nothing, with another app raises RuntimeError
    (build further apps with ``create_app(..., ui=False)``)."""
    if _installed["app"] is app:
        return
    if _installed["app"] is not None:
        raise RuntimeError(
            "the studio UI is already mounted on another app in this process (NiceGUI is global)"
        )
    from nicegui import ui

    from .common import set_target

    for name in PAGES:
        importlib.import_module(f"{__name__}.{name}")
    set_target(app)
    ui.run_with(
        app,
        title="unetkit studio",
        favicon="🔬",
        show_welcome_message=False,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
    )
    _installed["app"] = app
