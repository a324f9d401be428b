"""Training charts (``ui.echart``) from ``/runs/{run}/metrics`` and the validation previews of a run."""

from __future__ import annotations

from nicegui import ui

from .common import call, tid

SKIP = ("iteration", "epoch", "loss", "lr", "time", "step")


def _series(points: list[dict], key: str, name: str) -> dict:
    data = [[p["iteration"], p[key]] for p in points if isinstance(p.get(key), (int, float))]
    return {"type": "line", "name": name, "data": data, "showSymbol": len(data) < 30}


def loss_options(metrics: dict) -> dict:
    series = [
        _series(metrics.get("train", []), "loss", "train loss"),
        _series(metrics.get("val", []), "loss", "val loss"),
    ]
    return _chart("Loss", series)


def metric_options(metrics: dict) -> dict:
    val = metrics.get("val", [])
    keys = sorted({k for p in val for k, v in p.items() if k not in SKIP and isinstance(v, (int, float))})
    return _chart("Validation metrics", [_series(val, k, k) for k in keys])


def _chart(title: str, series: list[dict]) -> dict:
    return {
        "title": {"text": title, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 22, "type": "scroll"},
        "grid": {"top": 60, "left": 50, "right": 20, "bottom": 30},
        "xAxis": {"type": "value", "name": "iteration", "nameLocation": "middle", "nameGap": 22},
        "yAxis": {"type": "value", "scale": True},
        "animation": False,
        "series": series,
    }


class RunCharts:
    """Loss and metric charts plus the latest validation preview; ``refresh()`` re-reads them."""

    def __init__(self, api, run: str) -> None:
        self.api, self.run, self.shown_preview = api, run, None
        with ui.row().classes("w-full gap-4 no-wrap"):
            self.loss = tid(ui.echart(loss_options({})).classes("w-1/2 h-64"), "chart-loss")
            self.metric = tid(ui.echart(metric_options({})).classes("w-1/2 h-64"), "chart-metrics")
        with tid(ui.column().classes("w-full gap-1"), "previews"):
            self.caption = ui.label(
                "Validation previews (image | ground truth | prediction) appear here."
            ).classes("text-sm text-grey-7")
            self.preview = tid(ui.element("img"), "preview-image").style(
                "width:min(100%,768px);image-rendering:pixelated"
            )
            self.preview.set_visibility(False)

    async def refresh(self) -> None:
        metrics = await call(self.api.run_metrics(self.run), quiet=True)
        if metrics is not None:
            self.loss.options.clear()
            self.loss.options.update(loss_options(metrics))
            self.metric.options.clear()
            self.metric.options.update(metric_options(metrics))
            self.loss.update()
            self.metric.update()
        previews = await call(self.api.run_previews(self.run), quiet=True)
        if previews:
            last = max(previews, key=lambda p: p["iteration"])
            if last["iteration"] != self.shown_preview:
                self.shown_preview = last["iteration"]
                self.preview.props["src"] = self.api.preview_url(self.run, last["iteration"])
                self.preview.props["data-iteration"] = str(last["iteration"])
                self.preview.set_visibility(True)
                self.caption.set_text(
                    f"Validation preview at iteration {last['iteration']} (image | ground truth | prediction); "
                    f"{len(previews)} so far"
                )
