"""Train page (``/train?project=``): project, model, run name; the config as a form and as raw JSON, checked live
by ``/api/train/check``; or **auto** with a time budget. Train → a task → its task page."""

from __future__ import annotations

import time

from nicegui import ui

from .common import call, frame, page_client, parse_json, pretty, task_href, tid

DEBOUNCE_S = 0.4
# (path in the config, label, "int" | "float" | "str" | the choices)
FIELDS = [
    (("epochs",), "Epochs", "int"),
    (("lr",), "Learning rate", "float"),
    (("val_every",), "Validate every (epochs)", "float"),
    (("batch_size", "train"), "Batch size (train)", "int"),
    (("batch_size", "val"), "Batch size (val)", "int"),
    (("input_size", "width"), "Input width", "int"),
    (("input_size", "height"), "Input height", "int"),
    (("dataset_tags", "train"), "Train tag", "str"),
    (("dataset_tags", "val"), "Val tag", "str"),
    (("special_classes", "background"), "Background class", "str"),
    (("special_classes", "neutral"), "Neutral class", "str"),
    (("data_workers", "train"), "Data workers (train)", "int"),
    (("weights_init_type",), "Weights init", ["transfer_learning", "continue_training"]),
    (("unetkit", "amp"), "Mixed precision", ["auto", "off", "fp16", "bf16"]),
    (("unetkit", "seed"), "Seed", "int"),
]


def get_path(config: dict, path: tuple) -> object:
    for key in path:
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


def set_path(config: dict, path: tuple, value: object) -> None:
    for key in path[:-1]:
        config = config.setdefault(key, {})
    if value is None or value == "":
        config.pop(path[-1], None)
    else:
        config[path[-1]] = value


def field_widget(label: str, kind):
    if isinstance(kind, list):
        return ui.select(kind, label=label, clearable=True)
    return ui.input(label) if kind == "str" else ui.number(label)


@ui.page("/train", response_timeout=30)
async def train_page(project: str = "") -> None:
    api = page_client()
    with frame("Train"):
        projects = await call(api.projects()) or []
        models = await call(api.train_models()) or []
        TrainForm(api, [p["name"] for p in projects], models, project)


class TrainForm:
    """The choices, the config form + JSON tab (kept in step), live errors, Train / Auto."""

    def __init__(self, api, projects: list[str], models: list[dict], project: str) -> None:
        self.api, self.config, self.changed_at, self.syncing = api, {}, None, False
        with ui.row().classes("items-center gap-3"):
            self.project = tid(ui.select(projects, label="Project", value=project if project in projects else None,
                                         on_change=self._project_changed).classes("w-64"), "train-project")  # fmt: skip
            names = {m["name"]: f"{m['name']} — {m.get('description', '')}"[:80] for m in models}
            self.model = tid(ui.select(names, label="Model", value=next(iter(names), None),
                                       on_change=self._model_changed).classes("w-80"), "train-model")  # fmt: skip
            self.run = tid(ui.input("Run name").classes("w-64"), "train-run")
        with ui.tabs() as tabs:
            form_tab = tid(ui.tab("Form"), "tab-form")
            json_tab = tid(ui.tab("JSON"), "tab-json")
            auto_tab = tid(ui.tab("Auto"), "tab-auto")
        with ui.tab_panels(tabs, value=form_tab).classes("w-full"):
            with ui.tab_panel(form_tab):
                self.inputs = {}
                with ui.row().classes("gap-3 flex-wrap"):
                    for path, label, kind in FIELDS:
                        widget = field_widget(label, kind)
                        widget.classes("w-52").on_value_change(
                            lambda e, p=path, k=kind: self._field(p, k, e.value)
                        )
                        self.inputs[path] = tid(widget, "cfg-" + "-".join(path))
            with ui.tab_panel(json_tab):
                self.editor = tid(
                    ui.codemirror("{}", language="JSON", on_change=self._json_edited), "train-json"
                )
                self.editor.classes("w-full").style("height: 50vh; border: 1px solid #ccc")
            with ui.tab_panel(auto_tab):
                ui.label("unetkit auto: plan, train, choose and report within a time budget.")
                self.budget = tid(
                    ui.input("Budget", value="10m", placeholder="e.g. 600, 10m, 1h"), "auto-budget"
                )
                tid(ui.button("Auto", icon="auto_awesome", on_click=self.submit_auto), "auto-submit")
        self.status = tid(ui.label(""), "train-status")
        self.errors = tid(ui.column().classes("gap-1"), "train-errors")
        tid(ui.button("Train", icon="play_arrow", on_click=self.submit), "train-submit")
        ui.timer(0.2, self._debounced)
        if self.project.value:
            ui.timer(0.01, self._load_defaults, once=True)

    async def _project_changed(self, _e) -> None:
        await self._load_defaults()

    def _model_changed(self, e) -> None:
        self._default_run_name()
        set_path(self.config, ("unetkit", "model"), e.value)
        self._show_config()

    def _default_run_name(self) -> None:
        if self.project.value and self.model.value:
            self.run.set_value(f"{self.project.value}_{self.model.value}")

    async def _load_defaults(self) -> None:
        if not self.project.value:
            return
        defaults = await call(self.api.train_defaults(self.project.value))
        if defaults is not None:
            self.config = defaults
            if self.model.value:
                set_path(self.config, ("unetkit", "model"), self.model.value)
            self._default_run_name()
            self._show_config()

    def _show_config(self) -> None:
        """Config → form fields and JSON text (without feeding the change back)."""
        self.syncing = True
        try:
            self._show_fields(self.config)
            self.editor.set_value(pretty(self.config))
        finally:
            self.syncing = False
        self.changed_at = 0.0

    def _show_fields(self, config: dict) -> None:
        for path, widget in self.inputs.items():
            try:
                widget.set_value(get_path(config, path))
            except ValueError:  # a choice the form does not offer: the JSON tab shows it
                widget.set_value(None)

    def _field(self, path: tuple, kind: str, value) -> None:
        if self.syncing:
            return
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        set_path(self.config, path, value)
        self.syncing = True
        try:
            self.editor.set_value(pretty(self.config))
        finally:
            self.syncing = False
        self.changed_at = time.monotonic()

    def _json_edited(self, e) -> None:
        if self.syncing:
            return
        value, problem = parse_json(e.value)
        if problem is None and isinstance(value, dict):
            self.config = value
            self.syncing = True
            try:
                self._show_fields(value)
            finally:
                self.syncing = False
        self.changed_at = time.monotonic()

    async def _debounced(self) -> None:
        if self.changed_at is None or time.monotonic() - self.changed_at < DEBOUNCE_S:
            return
        self.changed_at = None
        await self.check()

    async def check(self) -> bool:
        value, problem = parse_json(self.editor.value)
        if problem:
            self._errors([{"path": "$", "message": f"not JSON: {problem}"}])
            return False
        result = await call(self.api.train_check(value))
        if result is None:
            return False
        self._errors(result["errors"])
        return bool(result["ok"])

    def _errors(self, errors: list[dict]) -> None:
        self.status.set_text("config OK" if not errors else f"{len(errors)} error(s)")
        self.status.props["data-ok"] = str(not errors).lower()
        self.errors.clear()
        with self.errors:
            for e in errors:
                with tid(ui.row().classes("gap-2"), "train-error"):
                    ui.label(e.get("path") or "$").classes("font-mono text-sm")
                    ui.label(e["message"]).classes("text-negative")

    async def submit(self) -> None:
        value, problem = parse_json(self.editor.value)
        if problem:
            ui.notify(f"the config is not JSON: {problem}", type="negative")
            return
        task = await call(self.api.train(self.project.value, self.run.value, value, model=self.model.value))
        if task:
            ui.navigate.to(task_href(task["id"]))

    async def submit_auto(self) -> None:
        task = await call(self.api.auto(self.project.value, self.run.value, self.budget.value))
        if task:
            ui.navigate.to(task_href(task["id"]))
