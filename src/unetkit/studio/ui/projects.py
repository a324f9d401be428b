"""Projects page (``/``): the workspace's projects with their counts, and the Import form (``import masks``)."""

from __future__ import annotations

from nicegui import ui

from .common import TaskWatch, api_app, call, frame, href, page_client, section, tid

# (option, label, hint) of `unetkit import masks`, sent under the option's name
TEXT_OPTIONS = [
    ("class_name", "Class of binary masks", "vessel"),
    ("mask_suffix", "Mask suffix", "mask = <image stem><suffix>.<ext>"),
    ("match", "Match regex", "pair by the id of its first group, e.g. ^(\\d+)_"),
    ("split_csv", "Split CSV", "image,mask,split columns (instead of the folders)"),
    ("classes", "Classes (class-index masks)", "value i = i-th name, e.g. ,Sky,Building"),
    ("value_map", "Value map", "1=road,2=car (0 = bg)"),
    ("ignore", "Ignore values", "mask values that become the neutral class, e.g. 255"),
    ("fov", "FOV masks folder", "pixels outside the field of view become neutral"),
    ("fov_suffix", "FOV suffix", ""),
    ("neutral", "Neutral class", "neutral"),
    ("tag", "Tag every image", "e.g. train"),
    ("dataset", "Dataset name", "ds0"),
]
NUMBER_OPTIONS = [("threshold", "Threshold (1..255)", None), ("split", "Split ratio (train)", None),
                  ("seed", "Split seed", 0)]  # fmt: skip


@ui.page("/", response_timeout=30)
async def projects_page() -> None:
    api = page_client()
    with frame("Projects"):
        ws = await call(api.workspace())
        if ws is None:
            return
        with section(f"Projects in {ws['root']}", "projects"):
            if not ws["projects"]:
                ui.label("No project yet: import image + mask folders below.").classes("text-grey-7")
            with ui.row().classes("gap-3 flex-wrap"):
                for p in ws["projects"]:
                    project_card(p)
        import_form(api)
        upload_form(api)


def project_card(p: dict) -> None:
    with tid(ui.card().classes("w-64 cursor-pointer"), f"project-{p['name']}").on(
        "click", lambda name=p["name"]: ui.navigate.to(href("/project", name=name))
    ):
        ui.label(p["name"]).classes("text-base font-semibold")
        ui.label(f"{p['datasets']} datasets · {p['images']} images · {p['objects']} objects").classes(
            "text-sm text-grey-8"
        )
        with ui.row().classes("gap-1"):
            for c in p.get("classes", []):
                ui.chip(c["title"]).props(f"dense square text-color=white color={_quasar_color(c['color'])}")


def _quasar_color(color: str) -> str:
    """A class colour ``#rrggbb`` as a Quasar colour prop (hex passes through)."""
    return color if color.startswith("#") else "grey"


def import_form(api) -> None:
    with section("Import image + mask folders (unetkit import masks)", "import-form"):
        ui.label("Folders are relative to the workspace.").classes("text-sm text-grey-7")
        with ui.row().classes("w-full gap-3"):
            images = tid(ui.input("Images folder").classes("w-64"), "import-images")
            masks = tid(ui.input("Masks folder").classes("w-64"), "import-masks")
            out = tid(ui.input("Output project name").classes("w-64"), "import-out")
        fields: dict = {}
        with ui.expansion("More options (every import masks option)").classes("w-full"):
            with ui.row().classes("w-full gap-3 flex-wrap"):
                for name, label, hint in TEXT_OPTIONS:
                    fields[name] = tid(ui.input(label, placeholder=hint).classes("w-64"), f"import-{name}")
                for name, label, value in NUMBER_OPTIONS:
                    fields[name] = tid(ui.number(label, value=value).classes("w-48"), f"import-{name}")
                fields["instances"] = tid(
                    ui.checkbox("Instances (a folder of masks per image)"), "import-instances"
                )

        def opened(task: dict) -> None:
            project = (task.get("outputs") or {}).get("project", out.value)
            tid(ui.button("Open project", on_click=lambda: ui.navigate.to(href("/project", name=project))),
                "open-project")  # fmt: skip

        watch = TaskWatch(api, opened, testid="import")

        async def submit() -> None:
            options = {k: f.value for k, f in fields.items() if f.value not in (None, "", False)}
            folders = (
                {}
                if "split_csv" in options
                else {"images": images.value or None, "masks": masks.value or None}
            )
            task = await call(api.import_masks(out=out.value, **folders, **options))
            if task:
                watch.watch(task)

        tid(ui.button("Import", icon="file_download", on_click=submit), "import-submit")


def upload_form(api) -> None:
    """Files from this computer into a workspace folder (``POST /api/upload``), e.g. before an import."""
    with section("Upload image or mask files into the workspace", "upload-form"):
        folder = tid(ui.input("Workspace folder", value="uploads/images").classes("w-64"), "upload-folder")

        async def send(e) -> None:
            saved = await call(api.upload(folder.value, [(e.file.name, await e.file.read())]))
            if saved:
                ui.notify(f"saved {', '.join(saved['saved'])}", type="positive")

        max_bytes = getattr(getattr(api_app().state, "studio", None), "max_upload_bytes", None)
        tid(
            ui.upload(multiple=True, auto_upload=True, on_upload=send, max_file_size=max_bytes),
            "upload-files",
        )
