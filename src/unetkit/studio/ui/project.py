"""Project page (``/project?name=``): datasets, per-class statistics, the validate report and the item grid."""

from __future__ import annotations

from nicegui import ui

from .common import call, frame, href, page_client, section, tid

PAGE_SIZE = 48


@ui.page("/project", response_timeout=60)
async def project_page(name: str = "", dataset: str = "", offset: int = 0) -> None:
    api = page_client()
    with frame(f"Project {name}"):
        info = await call(api.project(name))
        if info is None:
            return
        s = info["summary"]
        with ui.row().classes("items-center gap-4"):
            ui.label(f"{s['datasets']} datasets · {s['images']} images · {s['objects']} objects")
            tid(ui.button("Train on it", icon="model_training",
                          on_click=lambda: ui.navigate.to(href("/train", project=name))), "train-on-project")  # fmt: skip
            ui.button("Test a model on it", icon="science",
                      on_click=lambda: ui.navigate.to(href("/test", project=name))).props("outline")  # fmt: skip
        with ui.row().classes("w-full gap-4 no-wrap items-start"):
            with section("Datasets").classes("w-72"):
                for d in info["datasets"]:
                    ui.link(f"{d['name']} ({d['images']})", href("/project", name=name, dataset=d["name"]))
            with section("Classes", "class-stats"):
                class_table(info["class_stats"])
        await validate_report(api, name)
        await item_grid(api, name, dataset or None, offset)


def class_table(stats: list[dict]) -> None:
    columns = [
        {"name": "title", "label": "Class", "field": "title", "align": "left", "sortable": True},
        {"name": "objects", "label": "Objects", "field": "objects", "sortable": True},
        {"name": "images", "label": "Images", "field": "images", "sortable": True},
        {"name": "pixels", "label": "Pixels", "field": "pixels", "sortable": True},
    ]
    table = ui.table(columns=columns, rows=stats, row_key="title").props("dense flat")
    table.add_slot(
        "body-cell-title",
        '<q-td :props="props"><span class="inline-block w-3 h-3 mr-2 align-middle rounded-sm" '
        ':style="{background: props.row.color}"></span>{{ props.value }}</q-td>',
    )


async def validate_report(api, name: str) -> None:
    report = await call(api.validate(name))
    if report is None:
        return
    with section("Validation", "validate-report"):
        if report["ok"]:
            ui.label("No problem found.").classes("text-positive")
        for p in report["problems"][:200]:
            with ui.row().classes("gap-2 items-baseline"):
                if p.get("item"):
                    ui.link(f"{p.get('dataset', '')}/{p['item']}",
                            href("/item", project=name, dataset=p.get("dataset", ""), item=p["item"]))  # fmt: skip
                if p.get("path"):
                    ui.label(p["path"]).classes("font-mono text-sm")
                ui.label(p["message"]).classes("text-negative")


async def item_grid(api, name: str, dataset: str | None, offset: int) -> None:
    page = await call(api.items(name, dataset=dataset, offset=offset, limit=PAGE_SIZE))
    if page is None:
        return
    total = page["total"]
    with section(f"Items {offset + 1}–{min(total, offset + PAGE_SIZE)} of {total}", "item-grid"):
        with ui.row().classes("gap-2"):
            if offset > 0:
                ui.link(
                    "← previous",
                    href("/project", name=name, dataset=dataset, offset=max(0, offset - PAGE_SIZE)),
                )
            if offset + PAGE_SIZE < total:
                tid(ui.link("next →", href("/project", name=name, dataset=dataset, offset=offset + PAGE_SIZE)),
                    "items-next")  # fmt: skip
        with ui.row().classes("gap-2 flex-wrap"):
            for it in page["items"]:
                target = href("/item", project=name, dataset=it["dataset"], item=it["name"])
                with tid(ui.link(target=target), "item-thumb").classes("no-underline text-black"):
                    with ui.column().classes("items-center gap-0 w-28"):
                        ui.html(
                            f'<img src="{api.image_url(name, it["dataset"], it["name"])}" loading="lazy" '
                            'style="width:104px;height:104px;object-fit:contain;background:#222">',
                            sanitize=False,
                        )
                        ui.label(it["name"]).classes("text-xs truncate w-28 text-center")
