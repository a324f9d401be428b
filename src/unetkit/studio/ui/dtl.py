"""DTL page (``/dtl``): a JSON editor from a template, checked as you type (graph drawing + errors), Start → task."""

from __future__ import annotations

import time

from nicegui import ui

from .common import TaskWatch, call, frame, href, page_client, pretty, section, tid

DEBOUNCE_S = 0.4


GRAPH_CSS = ".dtl-graph svg { width: 100%; height: 70vh; }"  # scaled to the box (the SVG has a viewBox)


@ui.page("/dtl", response_timeout=30)
async def dtl_page(template: str = "") -> None:
    api = page_client()
    ui.add_css(GRAPH_CSS)
    with frame("DTL"):
        templates = await call(api.dtl_templates()) or []
        DtlEditor(api, templates, template)


class DtlEditor:
    """Template buttons, the editor, the drawn graph, the errors (each with its JSON path), output + Start."""

    def __init__(self, api, templates: list[dict], chosen: str) -> None:
        self.api, self.templates = api, {t["name"]: t for t in templates}
        self.changed_at, self.checked_text = None, None
        options = {t["name"]: t["title"] for t in templates}
        self.template = tid(
            ui.select(options, label="Template", on_change=lambda e: self.pick(e.value)), "dtl-template"
        )
        self.template.classes("w-[36rem]")
        with ui.row().classes("w-full gap-4 no-wrap items-start"):
            with ui.column().classes("w-1/2 gap-2"):
                self.editor = tid(ui.codemirror("", language="JSON", on_change=self._edited), "dtl-editor")
                self.editor.classes("w-full").style("height: 60vh; border: 1px solid #ccc")
                with ui.row().classes("items-center gap-3 w-full"):
                    self.out = tid(ui.input("Output project name").classes("w-64"), "dtl-out")
                    tid(ui.button("Start", icon="play_arrow", on_click=self.start), "dtl-start")
                self.watch = TaskWatch(api, self._opened, testid="dtl")
            with ui.column().classes("w-1/2 gap-2"):
                self.status = tid(ui.label("").classes("font-semibold"), "dtl-status")
                self.errors = tid(ui.column().classes("gap-1"), "dtl-errors")
                with section("Graph").classes("w-full"):
                    self.graph = tid(
                        ui.html("", sanitize=False).classes("w-full overflow-auto dtl-graph"), "dtl-graph"
                    )
        ui.timer(0.2, self._debounced)
        if templates:
            self.template.set_value(chosen if chosen in self.templates else templates[0]["name"])

    def pick(self, name: str | None) -> None:
        if name not in self.templates:
            return
        graph = self.templates[name]["graph"]
        self.editor.set_value(graph if isinstance(graph, str) else pretty(graph))
        self.out.set_value("")  # the next check proposes the graph's output
        self.changed_at = 0.0  # check at once

    def _edited(self, _event) -> None:
        self.changed_at = time.monotonic()

    async def _debounced(self) -> None:
        if self.changed_at is None or time.monotonic() - self.changed_at < DEBOUNCE_S:
            return
        self.changed_at = None
        text = self.editor.value
        if text != self.checked_text:
            self.checked_text = text
            await self.check(text)

    async def check(self, text: str) -> None:
        result = await call(self.api.dtl_check(text))
        if result is None:
            return
        self.status.set_text("graph OK" if result["ok"] else f"{len(result['errors'])} error(s)")
        self.status.classes(replace="font-semibold " + ("text-positive" if result["ok"] else "text-negative"))
        self.status.props["data-ok"] = str(bool(result["ok"])).lower()
        self.errors.clear()
        with self.errors:
            for e in result["errors"]:
                with tid(ui.row().classes("gap-2 items-baseline"), "dtl-error"):
                    tid(ui.label(e.get("path") or "$").classes("font-mono text-sm"), "dtl-error-path")
                    ui.label(e["message"]).classes("text-negative")
        if result.get("svg"):
            self.graph.set_content(result["svg"])
        if result.get("outputs") and not self.out.value:
            self.out.set_value(result["outputs"][0])

    async def start(self) -> None:
        task = await call(self.api.dtl_run(self.editor.value, self.out.value))
        if task:
            self.watch.watch(task)

    def _opened(self, task: dict) -> None:
        project = (task.get("outputs") or {}).get("project") or self.out.value
        tid(ui.button(f"Open {project}", icon="folder_open",
                      on_click=lambda: ui.navigate.to(href("/project", name=project))), "open-project")  # fmt: skip
