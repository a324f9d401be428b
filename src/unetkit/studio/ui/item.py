"""Item viewer (``/item?project=&dataset=&item=``): the picture with one RGBA layer per class stacked above it.

Class toggles and an opacity slider; zoom with the wheel and pan by dragging (a CSS transform, :data:`PANZOOM_JS`).
"""

from __future__ import annotations

from nicegui import ui

from .common import call, frame, href, page_client, tid

# Event delegation: any element with data-panzoom zooms/pans its first child (transform-origin 0 0).
PANZOOM_JS = """
<script>
(() => {
  if (window.studioPanZoom) return;
  window.studioPanZoom = true;
  const states = new WeakMap();
  const get = (el) => { if (!states.has(el)) states.set(el, {z: 1, x: 0, y: 0}); return states.get(el); };
  const apply = (el, s) => {
    el.firstElementChild.style.transform = `translate(${s.x}px, ${s.y}px) scale(${s.z})`;
    el.dataset.zoom = s.z.toFixed(3);
  };
  document.addEventListener('wheel', (e) => {
    const el = e.target.closest('[data-panzoom]');
    if (!el) return;
    e.preventDefault();
    const s = get(el), r = el.getBoundingClientRect();
    const z = Math.min(30, Math.max(0.2, s.z * (e.deltaY < 0 ? 1.2 : 1 / 1.2)));
    const px = e.clientX - r.left, py = e.clientY - r.top;
    s.x = px - (px - s.x) * z / s.z; s.y = py - (py - s.y) * z / s.z; s.z = z;
    apply(el, s);
  }, {passive: false});
  let drag = null;
  document.addEventListener('pointerdown', (e) => {
    const el = e.target.closest('[data-panzoom]');
    if (el) { e.preventDefault(); drag = {el, x: e.clientX, y: e.clientY}; }
  });
  document.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const s = get(drag.el);
    s.x += e.clientX - drag.x; s.y += e.clientY - drag.y; drag.x = e.clientX; drag.y = e.clientY;
    apply(drag.el, s);
  });
  document.addEventListener('pointerup', () => { drag = null; });
})();
</script>
"""
VIEWER_CSS = (
    "position:relative;overflow:hidden;background:#111;width:min(100%,640px);aspect-ratio:1;cursor:grab"
)


def layered_viewer(base_url: str, layers: list[tuple[str, str, str]], testid: str = "viewer") -> dict:
    """A zoomable stack: the picture and one ``<img>`` per ``(class, colour, url)`` layer; returns the layers."""
    ui.add_head_html(PANZOOM_JS)
    shown = {}
    with tid(ui.element("div"), testid).style(VIEWER_CSS) as box:
        box.props["data-panzoom"] = "1"
        with ui.element("div").style("position:relative;width:100%;height:100%;transform-origin:0 0"):
            _img(base_url, "base")
            for title, _color, url in layers:
                shown[title] = _img(url, f"layer-{title}", "position:absolute;inset:0;opacity:0.6")
    return shown


def _img(url: str, testid: str, extra: str = "") -> ui.element:
    img = tid(ui.element("img"), testid)
    img.props["src"] = url
    img.props["draggable"] = "false"
    img.style(f"width:100%;height:100%;object-fit:contain;image-rendering:pixelated;{extra}")
    return img


def layer_controls(shown: dict, colors: dict[str, str]) -> None:
    """Opacity slider and one toggle per class."""
    with ui.column().classes("gap-1"):
        ui.label("Opacity")
        slider = tid(ui.slider(min=0, max=1, step=0.05, value=0.6).classes("w-48"), "layer-opacity")

        def opacity(e) -> None:
            for img in shown.values():
                img.style(f"opacity:{e.value}")

        slider.on_value_change(opacity)
        for title, img in shown.items():
            with ui.row().classes("items-center gap-1"):
                ui.element("span").style(
                    f"display:inline-block;width:12px;height:12px;background:{colors[title]}"
                )
                tid(ui.checkbox(title, value=True, on_change=lambda e, i=img: i.set_visibility(e.value)),
                    f"toggle-{title}")  # fmt: skip


@ui.page("/item", response_timeout=30)
async def item_page(project: str = "", dataset: str = "", item: str = "") -> None:
    api = page_client()
    with frame(f"{project} / {dataset} / {item}"):
        info = await call(api.project(project))
        if info is None:
            return
        colors = {c["title"]: c["color"] for c in info["class_stats"]}
        layers = [(t, col, api.layer_url(project, dataset, item, t)) for t, col in colors.items()]
        ui.link(f"← {project}", href("/project", name=project, dataset=dataset))
        with ui.row().classes("w-full gap-6 no-wrap items-start"):
            shown = layered_viewer(api.image_url(project, dataset, item), layers)
            layer_controls(shown, colors)
        ui.label("Wheel: zoom · drag: pan").classes("text-sm text-grey-7")
