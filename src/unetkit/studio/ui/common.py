"""Shared page parts: the frame (header + navigation drawer), the page's API client, notifications, task status.

Pages hold no logic: every action is one :class:`~unetkit.studio.client.StudioClient` call, and an error answer
becomes one notification (its ``detail``), never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx
from nicegui import ui

from unetkit.studio.client import FINISHED, StudioClient, StudioClientError

T = TypeVar("T")
NAV = [
    ("Projects", "/", "folder"),
    ("DTL", "/dtl", "account_tree"),
    ("Train", "/train", "model_training"),
    ("Tasks", "/tasks", "list_alt"),
    ("Test", "/test", "science"),
    ("Evaluations", "/evaluations", "analytics"),
    ("Models", "/models", "memory"),
]
STATE_COLORS = {"queued": "grey", "running": "primary", "done": "positive", "failed": "negative",
                "stopped": "warning", "interrupted": "orange"}  # fmt: skip
_target: dict[str, Any] = {"app": None}
_clients: dict[Any, StudioClient] = {}


def set_target(fastapi_app) -> None:
    """The FastAPI app whose JSON API the pages call (in process)."""
    _target["app"] = fastapi_app
    _clients.clear()


def api_app():
    """The FastAPI app the pages belong to."""
    return _target["app"]


def tid(element: T, name: str) -> T:
    """Give ``element`` a stable ``data-testid`` (what the browser test clicks)."""
    element.props["data-testid"] = name
    return element


def href(path: str, **params: Any) -> str:
    """A page URL with its query (``href("/project", name="vessels")``)."""
    query = {k: v for k, v in params.items() if v not in (None, "")}
    return path + (f"?{urlencode(query)}" if query else "")


def task_href(task_id: str) -> str:
    return f"/tasks/{quote(task_id, safe='')}"


def page_client() -> StudioClient:
    """The in-process API client of the pages. The studio's token middleware already let this page's request
    in (token in ``?token=`` or its cookie), so the pages call the API with the studio's own token."""
    fastapi_app = _target["app"]
    if fastapi_app not in _clients:
        studio = getattr(fastapi_app.state, "studio", None)
        token = getattr(studio, "token", None)
        _clients[fastapi_app] = StudioClient.in_process(fastapi_app, token, url_token=False)
    return _clients[fastapi_app]


async def call(awaitable: Awaitable[T], *, quiet: bool = False) -> T | None:
    """Await one API call; an error answer becomes one negative notification (none when ``quiet``) and ``None``."""
    try:
        return await awaitable
    except StudioClientError as exc:
        if not quiet:
            notify_error(exc)
        return None
    except httpx.HTTPError as exc:  # no answer at all (in process: should not happen)
        if not quiet:
            ui.notify(f"the studio API did not answer: {exc}", type="negative", close_button=True)
        return None


def notify_error(exc: StudioClientError) -> None:
    detail = exc.detail
    if exc.status == 401:
        detail = f"{detail} — open the URL with ?token= that 'unetkit studio' printed"
    ui.notify(detail, type="negative", multi_line=True, close_button=True, timeout=8000)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2)


def parse_json(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, "line L column C: message")``."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno} column {exc.colno}: {exc.msg}"


def state_badge(state: str) -> ui.badge:
    badge = ui.badge(state, color=STATE_COLORS.get(state, "grey"))
    badge.props["data-state"] = state
    return tid(badge, "task-state")


@contextmanager
def frame(title: str) -> Iterator[None]:
    """The page layout: header, navigation drawer (every page by URL), a content column."""
    ui.page_title(f"{title} · unetkit studio")
    ui.colors(primary="#1f6f8b")
    with ui.header(elevated=True).classes("items-center gap-3 py-2"):
        ui.button(icon="menu", on_click=lambda: drawer.toggle()).props("flat round dense color=white")
        ui.label("unetkit studio").classes("text-lg font-semibold")
        ui.label("·")
        tid(ui.label(title), "page-title").classes("text-lg")
    with ui.left_drawer(value=True, bordered=True).props("width=190").classes("bg-grey-1 px-0") as drawer:
        with ui.list().props("dense padding").classes("w-full"):
            for label, path, icon in NAV:
                with tid(ui.item(on_click=lambda p=path: ui.navigate.to(p)), f"nav-{label.lower()}"):
                    with ui.item_section().props("avatar"):
                        ui.icon(icon, color="primary")
                    ui.item_section(label)
    with ui.column().classes("w-full gap-4 p-2"):
        yield


def section(title: str, testid: str | None = None) -> ui.card:
    card = ui.card().classes("w-full")
    if testid:
        tid(card, testid)
    with card:
        ui.label(title).classes("text-base font-semibold")
    return card


class TaskWatch:
    """An inline status row for a submitted task: state, progress, a link to its page, ``on_done`` actions."""

    def __init__(
        self, api: StudioClient, on_done: Callable[[dict], None] | None = None, testid: str = "task"
    ):
        self.api, self.on_done, self.task = api, on_done, None
        self.row = tid(ui.row().classes("items-center gap-3"), f"{testid}-watch")
        self.timer = ui.timer(1.0, self._poll, active=False)

    def watch(self, task: dict) -> None:
        self.task = task
        self._show(task)
        self.timer.activate()

    async def _poll(self) -> None:
        if self.task is None:
            return
        task = await call(self.api.task(self.task["id"]))
        if task is None:
            self.timer.deactivate()
            return
        self._show(task)
        if task["state"] in FINISHED:
            self.timer.deactivate()
            if task["state"] == "done" and self.on_done:
                with self.row:
                    self.on_done(task)
            elif task.get("error"):
                ui.notify(task["error"], type="negative", multi_line=True, close_button=True)

    def _show(self, task: dict) -> None:
        self.row.clear()
        with self.row:
            if task["state"] not in FINISHED:
                ui.spinner(size="sm")
            state_badge(task["state"])
            ui.label(task.get("title", task["kind"]))
            progress = task.get("progress") or {}
            if progress.get("text"):
                ui.label(progress["text"]).classes("text-grey-7")
            tid(ui.link("task page", task_href(task["id"])), "task-link")
