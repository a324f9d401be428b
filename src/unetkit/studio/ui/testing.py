"""Test page (``/test?run=&project=``): a model, a project, an output name and the inference config
(defaults from ``/api/test/defaults``) → infer + evaluate as a task → the Evaluation page."""

from __future__ import annotations

from nicegui import ui

from .common import TaskWatch, call, frame, href, page_client, parse_json, pretty, tid

MODES = ["full_image", "sliding_window", "roi", "bboxes"]


def run_key(run: dict) -> str:
    """What the API takes as ``run``: its name, the workspace-relative folder (``runs/x``, ``models/y``)."""
    return run["name"]


@ui.page("/test", response_timeout=30)
async def test_page(run: str = "", project: str = "") -> None:
    api = page_client()
    with frame("Test"):
        runs = await call(api.runs()) or []
        projects = await call(api.projects()) or []
        TestForm(api, runs, [p["name"] for p in projects], run, project)


class TestForm:
    """Model / project / output choices, the inference config (mode + JSON), Test → task → evaluation."""

    def __init__(self, api, runs: list[dict], projects: list[str], run: str, project: str) -> None:
        self.api = api
        options = {
            run_key(r): f"{r['name']} ({r.get('kind', 'train')}, {r.get('architecture', '?')})" for r in runs
        }
        with ui.row().classes("items-center gap-3"):
            self.run = tid(ui.select(options, label="Model", value=run if run in options else None,
                                     on_change=self._load_defaults).classes("w-80"), "test-run")  # fmt: skip
            self.project = tid(ui.select(projects, label="Project", value=project if project in projects else None,
                                         on_change=self._default_out).classes("w-64"), "test-project")  # fmt: skip
            self.out = tid(ui.input("Output project name"), "test-out").classes("w-64")
        with ui.row().classes("items-center gap-3"):
            self.mode = tid(
                ui.select(MODES, label="Mode", value="full_image", on_change=self._mode), "test-mode"
            )
            self.mode.classes("w-48")
            self.probabilities = tid(
                ui.checkbox("Save probabilities (threshold slider)"), "test-probabilities"
            )
        self.editor = tid(ui.codemirror("{}", language="JSON"), "test-config")
        self.editor.classes("w-full").style("height: 30vh; border: 1px solid #ccc")
        tid(ui.button("Test", icon="science", on_click=self.submit), "test-submit")
        self.watch = TaskWatch(api, self._opened, testid="test")
        if self.run.value:
            ui.timer(0.01, self._load_defaults, once=True)
        self._default_out()

    async def _load_defaults(self, _e=None) -> None:
        if not self.run.value:
            return
        defaults = await call(self.api.test_defaults(self.run.value))
        if defaults is not None:
            self.editor.set_value(pretty(defaults))
            mode = (defaults.get("mode") or {}).get("name")
            if mode in MODES:
                self.mode.set_value(mode)

    def _default_out(self, _e=None) -> None:
        if self.project.value and not self.out.value:
            self.out.set_value(f"{self.project.value}_inf")

    def _mode(self, e) -> None:
        config, problem = parse_json(self.editor.value)
        if problem is None and isinstance(config, dict):
            mode = config.setdefault("mode", {})
            if mode.get("name") != e.value:
                mode["name"] = e.value
                self.editor.set_value(pretty(config))

    async def submit(self) -> None:
        config, problem = parse_json(self.editor.value)
        if problem:
            ui.notify(f"the inference config is not JSON: {problem}", type="negative")
            return
        task = await call(self.api.test(self.run.value, self.project.value, self.out.value, config=config,
                                        save_probabilities=bool(self.probabilities.value)))  # fmt: skip
        if task:
            self.watch.watch(task)

    def _opened(self, task: dict) -> None:
        outputs = task.get("outputs") or {}
        name = outputs.get("evaluation") or self.out.value
        tid(ui.button("Evaluation", icon="analytics",
                      on_click=lambda: ui.navigate.to(href("/evaluation", name=name))), "open-evaluation")  # fmt: skip
        predictions = outputs.get("project") or self.out.value
        ui.link(f"predictions ({predictions})", href("/project", name=predictions))
