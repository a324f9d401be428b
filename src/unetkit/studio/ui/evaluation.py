"""Evaluations (``/evaluations``, ``/evaluation?name=``): pooled metrics, the per-image table (sortable),
an FP/FN overlay per item, the confusion matrix, and a threshold slider when probabilities were saved."""

from __future__ import annotations

from nicegui import ui

from .common import call, frame, href, page_client, section, tid
from .item import PANZOOM_JS, layered_viewer

ID_KEYS = ("dataset", "item")
LEGEND_NAMES = {
    "tp": "true positive",
    "fp": "false positive",
    "fn": "false negative",
    "confused": "wrong class",
}


@ui.page("/evaluations", response_timeout=30)
async def evaluations_page() -> None:
    api = page_client()
    with frame("Evaluations"):
        names = await call(api.evaluations())
        if names is None:
            return
        if not names:
            ui.label("No evaluation yet: test a model on a project (Test page).").classes("text-grey-7")
        for entry in names:
            name = entry if isinstance(entry, str) else entry.get("name", "")
            tid(ui.link(name, href("/evaluation", name=name)), f"evaluation-{name}")


def headline(pooled: dict) -> dict[str, float]:
    """The pooled figures shown as cards (numbers only; ``per_class`` is a table)."""
    return {k: v for k, v in pooled.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def per_class_table(per_class: dict) -> None:
    metrics = sorted({m for figures in per_class.values() for m in figures})
    columns = [{"name": "class", "label": "class", "field": "class", "align": "left"}] + [
        {"name": m, "label": m, "field": m, "sortable": True} for m in metrics
    ]
    rows = [{"class": c, **{m: _fmt(v) for m, v in figures.items()}} for c, figures in per_class.items()]
    tid(ui.table(columns=columns, rows=rows, row_key="class").props("dense flat"), "per-class-table")


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


@ui.page("/evaluation", response_timeout=30)
async def evaluation_page(name: str = "") -> None:
    api = page_client()
    with frame(f"Evaluation {name}"):
        ev = await call(api.evaluation(name))
        if ev is not None:
            EvaluationView(api, name, ev)


class EvaluationView:
    def __init__(self, api, name: str, ev: dict) -> None:
        self.api, self.name, self.ev, self.shown_threshold, self.asked = api, name, ev, None, 0
        if ev.get("thresholds"):
            with ui.row().classes("items-center gap-3 w-full"):
                ui.label("Threshold")
                self.slider = tid(
                    ui.slider(min=0.05, max=0.95, step=0.05, value=0.5).classes("w-64"), "threshold"
                )
                self.slider.props("label-always")
                self.slider.on("change", self._threshold)
                self.at = tid(
                    ui.label(f"metrics at threshold {ev.get('threshold') or 0.5}"), "threshold-value"
                )
        self.pooled = tid(section("Pooled metrics"), "pooled-metrics")
        with section("Per image (click a row for its FP/FN overlay)", "per-image"):
            self.table = tid(ui.table(columns=[], rows=[], row_key="key", pagination=20), "per-image-table")
            self.table.props("dense flat").classes("w-full")
            self.table.on("rowClick", lambda e: self.open_item(e.args[1]))
        self.colors: dict[str, dict[str, str]] = {}  # project -> {class title: colour}, read once
        confusion = ev.get("confusion")
        if confusion:
            with section("Confusion matrix (rows: ground truth, columns: prediction)", "confusion"):
                self._confusion(confusion)
        self.dialog = ui.dialog().props("maximized=false")
        self.show(ev)

    def show(self, ev: dict) -> None:
        self.pooled.clear()
        with self.pooled:
            ui.label("Pooled metrics").classes("text-base font-semibold")
            pooled = ev.get("pooled") or {}
            with ui.row().classes("gap-3 flex-wrap"):
                for key, value in headline(pooled).items():
                    with tid(ui.card().classes("p-2 min-w-28"), f"metric-{key}"):
                        ui.label(key).classes("text-xs text-grey-7")
                        ui.label(_fmt(value)).classes("text-lg font-semibold")
            if isinstance(pooled.get("per_class"), dict):
                per_class_table(pooled["per_class"])
        rows = ev.get("per_image") or []
        keys = [k for k in (rows[0] if rows else {}) if k not in ID_KEYS]
        self.table.columns = [
            {"name": k, "label": k.replace("_", " ").title() if k in ID_KEYS else k, "field": k, "sortable": True,
             "align": "left" if k in ID_KEYS else "right"}
            for k in (*ID_KEYS, *keys)
        ]  # fmt: skip
        self.table.rows = [
            {**{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}, "key": f"{i}"}
            for i, r in enumerate(rows)
        ]
        self.table.update()

    async def _threshold(self, e) -> None:
        value = e.args if isinstance(e.args, (int, float)) else self.slider.value  # the moved-to value
        self.asked += 1
        asked = self.asked
        result = await call(self.api.evaluation_threshold(self.name, round(float(value), 4)))
        if result is not None and asked == self.asked:  # only the answer to the latest move
            self.shown_threshold = result.get("threshold")
            self.at.set_text(f"metrics at threshold {self.shown_threshold}")
            self.show({**self.ev, **result})

    def _confusion(self, confusion: dict) -> None:
        classes, matrix = confusion["classes"], confusion["matrix"]
        data = [[j, i, value] for i, row in enumerate(matrix) for j, value in enumerate(row)]
        top = max((v for *_, v in data), default=1) or 1
        options = {
            "tooltip": {"position": "top"},
            "grid": {"top": 10, "left": 100, "right": 20, "bottom": 80},
            "xAxis": {"type": "category", "data": classes, "name": "prediction", "axisLabel": {"rotate": 30}},
            "yAxis": {"type": "category", "data": classes, "name": "ground truth", "inverse": True},
            "visualMap": {
                "min": 0,
                "max": top,
                "calculable": True,
                "orient": "horizontal",
                "left": "center",
                "bottom": 0,
                "show": False,
            },  # fmt: skip
            "series": [{"type": "heatmap", "data": data, "label": {"show": True}}],
            "animation": False,
        }
        size = max(260, 60 * len(classes) + 120)
        tid(ui.echart(options).style(f"width:{size + 80}px;height:{size}px"), "confusion-chart")

    async def class_colors(self, project: str | None) -> dict[str, str]:
        if project and project not in self.colors:
            info = await call(self.api.project(project))
            self.colors[project] = {c["title"]: c["color"] for c in (info or {}).get("class_stats", [])}
        return self.colors.get(project or "", {})

    async def open_item(self, row: dict) -> None:
        dataset, item = row.get("dataset", ""), row.get("item", "")
        gt, pred = self.ev.get("gt"), self.ev.get("pred")
        sides = [(caption, project, await self.class_colors(project)) for caption, project in
                 (("ground truth", gt), ("prediction", pred)) if project]  # fmt: skip
        self.dialog.clear()
        ui.add_head_html(PANZOOM_JS)
        with self.dialog, ui.card().classes("w-full").style("max-width: 1500px"):
            ui.label(f"{dataset} / {item}").classes("text-base font-semibold")
            with ui.row().classes("gap-3 no-wrap"):
                for caption, project, colors in sides:  # the prediction beside the ground truth
                    with ui.column().classes("gap-1 items-center").style("width:420px"):
                        layers = [
                            (t, c, self.api.layer_url(project, dataset, item, t)) for t, c in colors.items()
                        ]
                        layered_viewer(self.api.image_url(project, dataset, item), layers,
                                       testid=f"side-{caption.replace(' ', '-')}")  # fmt: skip
                        ui.label(caption).classes("text-sm")
                _figure(
                    "FP / FN",
                    self.api.errors_url(self.name, dataset, item, self.shown_threshold),
                    "errors-overlay",
                )
            with ui.row().classes("gap-3 text-sm"):
                for key, color in (self.ev.get("legend") or {}).items():
                    ui.html(f'<span style="display:inline-block;width:12px;height:12px;background:{color};'
                            f'border:1px solid #888"></span> {LEGEND_NAMES.get(key, key)}', sanitize=False)  # fmt: skip
            with ui.row().classes("gap-3"):
                if gt:
                    ui.link("ground truth", href("/item", project=gt, dataset=dataset, item=item))
                if pred:
                    ui.link("prediction", href("/item", project=pred, dataset=dataset, item=item))
                ui.button("Close", on_click=self.dialog.close).props("flat")
        self.dialog.open()


def _figure(caption: str, url: str, testid: str | None = None) -> None:
    with ui.column().classes("gap-1 items-center"):
        with ui.element("div").style("width:480px;height:480px;overflow:hidden;background:#111") as box:
            box.props["data-panzoom"] = "1"
            img = ui.element("img").style(
                "width:100%;height:100%;object-fit:contain;image-rendering:pixelated"
            )
            img.props["src"] = url
            img.props["draggable"] = "false"
            if testid:
                tid(img, testid)
        ui.label(caption).classes("text-sm")
