"""Tasks (``/tasks``, ``/tasks/{id}``): the queue with states; a task's live log, charts, previews, Stop/Resume."""

from __future__ import annotations

import time

from nicegui import ui

from unetkit.studio.client import FINISHED

from .charts import RunCharts
from .common import call, frame, href, page_client, section, state_badge, task_href, tid

LOG_LINES = 2000
METRICS_EVERY_S = 2.0


@ui.page("/tasks", response_timeout=30)
async def tasks_page() -> None:
    api = page_client()
    with frame("Tasks"):
        with tid(ui.column().classes("w-full gap-1"), "task-list") as box:

            async def refresh() -> None:
                tasks = await call(api.tasks(), quiet=True)
                if tasks is None:
                    return
                box.clear()
                with box:
                    if not tasks:
                        ui.label("No task yet.").classes("text-grey-7")
                    for t in tasks:
                        with ui.row().classes("items-center gap-3"):
                            state_badge(t["state"])
                            tid(ui.link(t["title"], task_href(t["id"])), f"task-{t['id']}")
                            ui.label(
                                f"{t['kind']} · {time.strftime('%H:%M:%S', time.localtime(t['created']))}"
                            )
                            text = (t.get("progress") or {}).get("text")
                            if text:
                                ui.label(text).classes("text-grey-7")

            await refresh()
            ui.timer(2.0, refresh)


@ui.page("/tasks/{task_id}", response_timeout=30)
async def task_page(task_id: str) -> None:
    api = page_client()
    with frame("Task"):
        task = await call(api.task(task_id))
        if task is None:
            return
        view = TaskView(api, task)
        await view.poll()

        async def tick() -> None:
            await view.poll()
            if view.finished:
                timer.deactivate()

        timer = ui.timer(1.0, tick)


class TaskView:
    """One task: header, progress, Stop/Resume, its outputs, the live log; charts and previews of a run."""

    def __init__(self, api, task: dict) -> None:
        self.api, self.task, self.offset, self.last_metrics = api, task, 0, 0.0
        with ui.row().classes("items-center gap-3"):
            ui.label(task["title"]).classes("text-lg font-semibold")
            self.badge_box = ui.row()
            self.progress_text = tid(ui.label(""), "task-progress").classes("text-grey-7")
            self.stop_btn = tid(
                ui.button("Stop", icon="stop", color="negative", on_click=self.stop), "task-stop"
            )
            self.resume_btn = tid(ui.button("Resume", icon="replay", on_click=self.resume), "task-resume")
        self.bar = ui.linear_progress(value=0, show_value=False).classes("w-full")
        ui.label("unetkit " + " ".join(task["argv"])).classes("font-mono text-xs text-grey-7 break-all")
        self.outputs = tid(ui.row().classes("gap-3 items-center"), "task-outputs")
        self.error = tid(ui.label("").classes("text-negative font-mono"), "task-error")
        run = (task.get("outputs") or {}).get("run")
        self.charts = RunCharts(api, run) if run and task["kind"] in ("train", "auto") else None
        with section("Log").classes("w-full"):
            self.log = tid(ui.log(max_lines=LOG_LINES).classes("w-full h-80 font-mono text-xs"), "task-log")
        self.shown_state, self.finished = None, False

    async def poll(self) -> None:
        task = await call(self.api.task(self.task["id"]), quiet=True)
        if task is not None:
            self.task = task
        chunk = await call(self.api.task_log(self.task["id"], self.offset), quiet=True)
        settled = self.task["state"] in FINISHED and self.shown_state == self.task["state"]
        if chunk:
            settled = settled and not chunk["text"]
            if chunk["text"]:
                self.log.push(chunk["text"].rstrip("\n"))
            self.offset = chunk["offset"]
        self._show()
        due = time.monotonic() - self.last_metrics > METRICS_EVERY_S
        if self.charts and (due or self.task["state"] != self.shown_state):
            self.last_metrics = time.monotonic()
            await self.charts.refresh()
        self.shown_state = self.task["state"]
        self.finished = settled

    def _show(self) -> None:
        t = self.task
        if t["state"] != self.shown_state:
            self.badge_box.clear()
            with self.badge_box:
                state_badge(t["state"])
            self._show_outputs()
        progress = t.get("progress") or {}
        self.progress_text.set_text(progress.get("text") or "")
        fraction = progress.get("fraction")
        self.bar.set_value(1.0 if t["state"] == "done" else (fraction or 0.0))
        self.resume_btn.set_enabled(bool(t.get("resumable")) and t["state"] in FINISHED)
        self.stop_btn.set_enabled(t["state"] not in FINISHED)
        self.error.set_text(t.get("error") or "")

    def _show_outputs(self) -> None:
        out = self.task.get("outputs") or {}
        self.outputs.clear()
        with self.outputs:
            if out.get("project"):
                tid(
                    ui.link(f"project {out['project']}", href("/project", name=out["project"])),
                    "open-project",
                )
            if out.get("run"):
                tid(ui.link(f"model {out['run']}", href("/model", run=out["run"])), "open-model")
                ui.link("test it", href("/test", run=out["run"]))
            if out.get("evaluation"):
                tid(ui.link(f"evaluation {out['evaluation']}", href("/evaluation", name=out["evaluation"])),
                    "open-evaluation")  # fmt: skip
            if out.get("url"):
                tid(ui.link(out["url"], out["url"], new_tab=True), "serve-url")

    async def stop(self) -> None:
        task = await call(self.api.stop_task(self.task["id"]))
        if task:
            self.task = task
            self._show()

    async def resume(self) -> None:
        task = await call(self.api.resume_task(self.task["id"]))
        if task:
            ui.navigate.to(task_href(task["id"]))
