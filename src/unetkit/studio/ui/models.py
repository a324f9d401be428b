"""Models (``/models``, ``/model?run=``): runs with their cards and charts; Export ONNX, report, Serve, Test."""

from __future__ import annotations

import time

from nicegui import ui

from .charts import RunCharts
from .common import TaskWatch, call, frame, href, page_client, pretty, section, tid


@ui.page("/models", response_timeout=30)
async def models_page() -> None:
    api = page_client()
    with frame("Models"):
        runs = await call(api.runs())
        if runs is None:
            return
        if not runs:
            ui.label(
                "No model yet: train one (Train page), or drop an original checkpoint folder into models/."
            )
        with ui.row().classes("gap-3 flex-wrap"):
            for r in runs:
                run_card(r)


def run_card(r: dict) -> None:
    with tid(ui.card().classes("w-80"), f"run-{r['name']}"):
        ui.link(r["name"], href("/model", run=r["name"])).classes("text-base font-semibold")
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created"])) if r.get("created") else "?"
        ui.label(f"{r.get('kind')} · {r.get('architecture') or '?'} · {created}").classes(
            "text-sm text-grey-8"
        )
        ui.label("classes: " + ", ".join(c.get("title", "?") for c in r.get("classes", []))).classes(
            "text-sm"
        )
        if r.get("error"):
            ui.label(r["error"]).classes("text-negative text-sm")
        elif not r.get("best_checkpoint"):
            ui.label("no checkpoint yet").classes("text-grey-7 text-sm")


@ui.page("/model", response_timeout=30)
async def model_page(run: str = "") -> None:
    api = page_client()
    with frame(f"Model {run}"):
        info = await call(api.run(run))
        if info is None:
            return
        s = info["summary"]
        ui.label(f"{s.get('kind')} · {s.get('architecture') or '?'} · best checkpoint: "
                 f"{s.get('best_checkpoint') or 'none yet'}")  # fmt: skip
        watch = TaskWatch(api, testid="model")
        served = ui.row().classes("items-center gap-2")

        async def export() -> None:
            task = await call(api.export_onnx(run))
            if task:
                watch.watch(task)

        async def serve() -> None:
            task = await call(api.serve(run))
            if task:
                watch.watch(task)
                url = task["outputs"].get("url", "#")
                served.clear()
                with served:
                    ui.label("the service (stop it on its task page):")
                    tid(ui.link(url, url, new_tab=True), "serve-url")

        with ui.row().classes("gap-2"):
            tid(
                ui.button("Test", icon="science", on_click=lambda: ui.navigate.to(href("/test", run=run))),
                "model-test",
            )
            tid(ui.button("Export ONNX", icon="save_alt", on_click=export).props("outline"), "model-export")
            tid(ui.button("Serve", icon="cloud_upload", on_click=serve).props("outline"), "model-serve")
            files = info.get("files") or {}
            if files.get("report"):
                tid(ui.link("report.html", api.report_url(run), new_tab=True), "model-report")
        charts = RunCharts(api, run)
        await charts.refresh()
        with ui.row().classes("w-full gap-4 no-wrap items-start"):
            with section("Model card (config.json)").classes("w-1/2"):
                ui.code(pretty(info.get("card")), language="json").classes("w-full text-xs")
            with section("Inference settings").classes("w-1/2"):
                ui.code(pretty(info.get("inference")), language="json").classes("w-full text-xs")
