"""DTL for the studio: graph templates, a check that reports every problem with its JSON path, the drawing.

Graphs are validated by :func:`unetkit.dtl.graph.build_graph` (the layer index, action and key of the problem in
``GraphError.json_path``) and drawn by :func:`unetkit.dtl.draw.draw_graph`; a data layer's project is found in
the workspace by its folder name, as ``unetkit dtl run --input`` does.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import unetkit
from unetkit.errors import GraphError, UnetkitError
from unetkit.project import ProjectMeta
from unetkit.project.io import load_json, meta_path_of
from unetkit.studio.workspace import Workspace

EXAMPLES = Path(unetkit.__file__).resolve().parents[2] / "examples"  # a source checkout's examples/
SVG_CACHE = 64
_svgs: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def templates() -> list[dict]:
    """``[{name, title, graph}]``: the tutorial's graph first, then the DTL graphs of ``examples/`` (if present)."""
    from unetkit.demo.pipeline import vessels_graph

    tutorial = vessels_graph()
    out = [{"name": "vessels_train", "title": "Tutorial: " + describe(tutorial), "graph": tutorial}]
    if EXAMPLES.is_dir():
        for path in sorted(EXAMPLES.rglob("*.json")):
            graph = _graph_file(path)
            if graph is not None and graph != tutorial:
                name = path.relative_to(EXAMPLES).with_suffix("").as_posix()
                out.append({"name": name, "title": f"{name}: {describe(graph)}", "graph": graph})
    return out


def _graph_file(path: Path) -> list | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    is_graph = isinstance(value, list) and value and all(isinstance(x, dict) and "action" in x for x in value)
    return value if is_graph else None


def describe(graph: list) -> str:
    """``vessels → vessels_train (11 layers)``."""
    try:
        built = build(graph)
    except UnetkitError:
        return f"{len(graph)} layers"
    return f"{', '.join(built.projects)} → {built.save_layer.dst[0]} ({len(graph)} layers)"


def parse(graph) -> object:
    """The graph JSON value: text is parsed (GraphError at ``$`` when it is not JSON)."""
    if not isinstance(graph, str):
        return graph
    try:
        return json.loads(graph)
    except ValueError as exc:
        raise GraphError(f"not JSON: {exc}", json_path="$") from None


def input_projects(graph, workspace: Workspace) -> tuple[dict[str, str], list[GraphError]]:
    """``{project name: workspace name}`` for the graph's data layers, and an error per project not found."""
    by_folder: dict[str, list[str]] = {}
    for rel in workspace.projects():
        by_folder.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
    found, errors = {}, []
    for layer in graph.data_layers:
        name = layer.project
        if name in found:
            continue
        candidates = by_folder.get(name, [])
        if len(candidates) == 1:
            found[name] = candidates[0]
            continue
        why = (
            f"several projects are named {name!r} ({', '.join(candidates)}); keep one"
            if candidates
            else f"project {name!r} is not in the workspace (projects: {', '.join(sorted(by_folder)) or 'none'})"
        )
        errors.append(layer.error(why, key="src"))
    return found, errors


def check(graph_value, workspace: Workspace) -> dict:
    """``{ok, errors: [{path, message}], svg, outputs, meta}`` (``meta``: the output classes and tags)."""
    out = {"ok": False, "errors": [], "svg": None, "outputs": [], "meta": None}
    try:
        graph = build(graph_value)
    except GraphError as exc:
        out["errors"].append(error_json(exc))
        return out
    out["outputs"] = [graph.save_layer.dst[0]]
    out["svg"] = svg(graph)
    found, errors = input_projects(graph, workspace)
    out["errors"] = [error_json(e) for e in errors]
    if not errors:
        try:
            meta = output_meta(graph, found, workspace)
            out["meta"] = {"classes": [{"title": c.title, "shape": c.shape, "color": c.color} for c in meta.classes],
                           "tags": [t.name for t in meta.tag_metas]}  # fmt: skip
        except UnetkitError as exc:
            out["errors"].append(error_json(exc))
    out["ok"] = not out["errors"]
    return out


def build(graph_value):
    from unetkit.dtl.graph import build_graph

    return build_graph(parse(graph_value))


def output_meta(graph, found: dict[str, str], workspace: Workspace) -> ProjectMeta:
    """The output meta from the input projects' metas (GraphError naming the layer on a class problem)."""
    from unetkit.dtl.graph import compute_metas

    metas = {}
    for name, rel in found.items():
        path = meta_path_of(workspace.resolve(rel))
        metas[name] = ProjectMeta.from_json(load_json(path), file=workspace.rel(path))
    return compute_metas(graph, metas)


def error_json(exc: UnetkitError) -> dict:
    message = f"{exc.file}: {exc.message}" if exc.file else exc.message
    return {"path": exc.json_path or "$", "message": message}


def svg(graph) -> str:
    """The drawing of ``unetkit dtl draw`` as SVG text (without the XML prolog), cached by the graph JSON."""
    from unetkit.dtl.draw import draw_graph

    key = json.dumps(graph.source, sort_keys=True)
    with _lock:
        if key in _svgs:
            _svgs.move_to_end(key)
            return _svgs[key]
    with tempfile.TemporaryDirectory(prefix="unetkit-studio-") as tmp:
        path = Path(tmp) / "graph.svg"
        draw_graph(graph, path)
        text = path.read_text(encoding="utf-8")
    text = text[text.find("<svg") :] if "<svg" in text else text
    with _lock:
        _svgs[key] = text
        while len(_svgs) > SVG_CACHE:
            _svgs.popitem(last=False)
    return text
