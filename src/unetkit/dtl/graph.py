"""Parse and validate a DTL graph and compute its static output meta.

Original behaviour: docs/original-behaviour.md, "DTL graph validation" and "DTL class mapping".

Every problem is a GraphError naming the layer (index and action) and the offending key, raised while
building the graph, i.e. before any image is processed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from unetkit.config_base import (
    describe_validation_error,
    did_you_mean,
    find_nonfinite,
    nonfinite_message,
    read_json,
    unknown_key_message,
)
from unetkit.dtl.base import LAYER_KEYS, Layer
from unetkit.dtl.class_mapping import merge_metas
from unetkit.dtl.layers import get_layer
from unetkit.errors import GraphError
from unetkit.project import ProjectMeta

NULL = "null"


def _err(index: int, action: str | None, key: str | None, message: str) -> GraphError:
    where = f"layer {index}" + (f" ({action})" if action else "")
    err = GraphError(f"{where}: {key}: {message}" if key else f"{where}: {message}")
    err.json_path = f"$[{index}]" + (f".{key}" if key else "")
    err.layer_index, err.action, err.key = index, action, key
    return err


def parse_layer(index: int, obj: object) -> Layer:
    """One layer object -> a Layer instance (schema, placeholders, settings, extra checks)."""
    if not isinstance(obj, dict):
        raise _err(index, None, None, f"a layer must be a JSON object, got {type(obj).__name__}")
    if "action" not in obj:
        raise _err(index, None, "action", 'No "action" field in layer.')
    action = obj["action"]
    if not isinstance(action, str):
        raise _err(index, None, "action", "action must be a string")
    try:
        cls = get_layer(action)
    except GraphError as exc:
        raise _err(index, action, "action", exc.message) from None
    for key in obj:
        if key not in LAYER_KEYS:
            raise _err(index, action, str(key), unknown_key_message(str(key), list(LAYER_KEYS)))
    for key in ("src", "dst", "settings"):
        if key not in obj:
            raise _err(index, action, key, "required key is missing")
    src, dst, settings = obj["src"], obj["dst"], obj["settings"]
    if not isinstance(src, list) or not all(isinstance(s, str) for s in src) or not src:
        raise _err(index, action, "src", "must be a non-empty array of strings")
    if cls.n_branches == 1:
        if not isinstance(dst, str):
            raise _err(index, action, "dst", "must be a string")
        dst = [dst]
    elif not isinstance(dst, list) or len(dst) != cls.n_branches or not all(isinstance(d, str) for d in dst):
        raise _err(index, action, "dst", f"must be an array of exactly {cls.n_branches} strings")
    for i, name in enumerate(src):
        if cls.is_data:
            continue
        if name == NULL:
            raise _err(index, action, f"src[{i}]", '"null" cannot be in "src".')
        if not name.startswith("$") or len(name) < 2:
            raise _err(index, action, f"src[{i}]", f'Connection name should start with "$": {name!r}')
    for i, name in enumerate(dst):
        key = "dst" if cls.n_branches == 1 else f"dst[{i}]"
        if cls.is_save:
            if not name.strip():
                raise _err(index, action, key, "output name must not be empty")
            if any(ch in name for ch in "/\\|"):
                raise _err(index, action, key, "output name must not contain '/', '\\' or '|'")
        elif name != NULL and (not name.startswith("$") or len(name) < 2):
            raise _err(index, action, key, f'Connection name should be "null" or start with "$": {name!r}')
    if not isinstance(settings, dict):
        raise _err(index, action, "settings", "must be a JSON object")
    nonfinite = find_nonfinite(settings, "settings")
    if nonfinite:
        raise _err(index, action, nonfinite[0], nonfinite_message(nonfinite[1]))
    try:
        parsed = cls.Settings.model_validate(settings)
    except ValidationError as exc:
        path, message = describe_validation_error(exc, cls.Settings)
        raise _err(index, action, "settings" + path.removeprefix("$"), message) from None
    layer = cls(index, src, dst, parsed)
    layer.validate()
    return layer


@dataclass
class Graph:
    """A validated graph: layers in array order, wiring, and (with input metas) every layer's meta."""

    layers: list[Layer]
    consumers: dict[str, list[Layer]]  # placeholder -> layers listing it in src, in array order
    order: list[Layer]  # a topological order
    output_meta: ProjectMeta | None = None
    layer_metas: dict[int, ProjectMeta] = field(default_factory=dict)
    source: object = None  # the graph JSON

    @property
    def data_layers(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.is_data]

    @property
    def save_layer(self) -> Layer:
        return next(layer for layer in self.layers if layer.is_save)

    @property
    def projects(self) -> list[str]:
        """Project names referenced by the data layers, in first-use order."""
        names: list[str] = []
        for layer in self.data_layers:
            if layer.project not in names:
                names.append(layer.project)
        return names


def _check_structure(layers: list[Layer]) -> tuple[dict[str, list[Layer]], list[Layer]]:
    if len(layers) < 2:
        raise GraphError("Graph has to contain at least two layers (a data layer and a save layer).")
    saves = [layer for layer in layers if layer.is_save]
    if len(saves) != 1:
        where = ", ".join(f"layer {la.index} ({la.action})" for la in saves) or "none found"
        raise GraphError(f"Graph has to contain only one save layer ({where}).")
    if not any(layer.is_data for layer in layers):
        raise GraphError("Graph error: missing data layer.")
    producers: dict[str, list[Layer]] = defaultdict(list)
    consumers: dict[str, list[Layer]] = defaultdict(list)
    for layer in layers:
        if not layer.is_save:
            for name in layer.dst:
                if name != NULL:
                    producers[name].append(layer)
        if not layer.is_data:
            for name in layer.src:
                if layer not in consumers[name]:
                    consumers[name].append(layer)
    for layer in layers:
        if layer.is_data:
            continue
        for i, name in enumerate(layer.src):
            if name not in producers:
                raise _err(
                    layer.index,
                    layer.action,
                    f"src[{i}]",
                    f'placeholder "{name}" is produced by no layer{did_you_mean(name, producers)}. '
                    "Graph has several connected components. Only one is allowed.",
                )
    succ = {
        la.index: []
        if la.is_save
        else [c for name in la.dst if name != NULL for c in consumers.get(name, [])]
        for la in layers
    }
    # Cycle check: DFS with white/grey/black colouring from every data layer.
    colour = dict.fromkeys(succ, 0)
    for start in (la for la in layers if la.is_data):
        stack = [(start, iter(succ[start.index]))]
        colour[start.index] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node.index] = 2
                stack.pop()
            elif colour[nxt.index] == 1:
                raise _err(nxt.index, nxt.action, "src", "Loop in layers structure.")
            elif colour[nxt.index] == 0:
                colour[nxt.index] = 1
                stack.append((nxt, iter(succ[nxt.index])))
    # One connected component (edges undirected), containing the save layer.
    parent = {la.index: la.index for la in layers}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for la in layers:
        for nxt in succ[la.index]:
            parent[find(la.index)] = find(nxt.index)
    root = find(saves[0].index)
    for la in layers:
        if find(la.index) != root:
            raise _err(
                la.index, la.action, "dst", "Graph has several connected components. Only one is allowed."
            )
    # Topological order (Kahn, ties broken by array order).
    indeg = {la.index: 0 for la in layers}
    for la in layers:
        for nxt in succ[la.index]:
            indeg[nxt.index] += 1
    ready = [la for la in layers if indeg[la.index] == 0]
    order: list[Layer] = []
    while ready:
        ready.sort(key=lambda la: la.index)
        la = ready.pop(0)
        order.append(la)
        for nxt in succ[la.index]:
            indeg[nxt.index] -= 1
            if indeg[nxt.index] == 0:
                ready.append(nxt)
    for la in layers:
        if la not in order:  # unreachable from a data layer but part of a loop
            raise _err(la.index, la.action, "src", "Loop in layers structure.")
    return dict(consumers), order


def compute_metas(graph: Graph, project_metas: dict[str, ProjectMeta]) -> ProjectMeta:
    """Propagate metas from the data layers to the save layer; returns the output meta
    (docs/original-behaviour.md, "DTL class mapping")."""
    placeholder_metas: dict[str, list[ProjectMeta]] = defaultdict(list)
    for layer in graph.order:
        if layer.is_data:
            if layer.project not in project_metas:
                raise layer.error(
                    f"Data Layer can not init corresponding project meta: project {layer.project!r} "
                    f"was not provided (given: {sorted(project_metas) or 'none'})",
                    key="src",
                )
            in_meta = project_metas[layer.project]
        else:
            metas = [m for name in layer.src for m in placeholder_metas[name]]
            in_meta = merge_metas(metas, layer=layer)
        out = layer.output_meta(in_meta)
        graph.layer_metas[layer.index] = out
        for name in layer.dst:
            if name != NULL and not layer.is_save:
                placeholder_metas[name].append(out)
    graph.output_meta = graph.layer_metas[graph.save_layer.index]
    return graph.output_meta


def build_graph(obj: object, project_metas: dict[str, ProjectMeta] | None = None, *, file=None) -> Graph:
    """Validate a graph JSON value; with ``project_metas`` ({project name: meta}) also compute metas."""
    try:
        if not isinstance(obj, list):
            raise GraphError("a DTL graph must be a JSON array of layers", json_path="$")
        layers = [parse_layer(i, layer) for i, layer in enumerate(obj)]
        consumers, order = _check_structure(layers)
        graph = Graph(layers=layers, consumers=consumers, order=order, source=obj)
        if project_metas is not None:
            compute_metas(graph, project_metas)
        return graph
    except GraphError as exc:
        if file is None or exc.file is not None:
            raise
        wrapped = GraphError(str(exc), file=file)
        wrapped.__dict__.update({k: v for k, v in exc.__dict__.items() if k not in ("file", "message")})
        raise wrapped from None


def read_graph_json(path: str | Path) -> object:
    """The JSON value of a graph file (GraphError when unreadable, not JSON or holding a non-finite number)."""
    return read_json(path, what="graph", error=GraphError)


def load_graph(path: str | Path, project_metas: dict[str, ProjectMeta] | None = None) -> Graph:
    """Read and validate a graph file."""
    return build_graph(read_graph_json(path), project_metas, file=Path(path))
