"""Draw a DTL graph like the original's graph view: sources -> action nodes (purple) -> output.

Writes Graphviz DOT itself; SVG / PNG are rendered with Graphviz ``dot`` when it is installed, else with a
simple layered layout drawn by matplotlib (no system dependency).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetkit import atomic
from unetkit.dtl.graph import NULL, Graph
from unetkit.errors import ConfigError

ACTION_COLOR = "#8E44AD"
SOURCE_COLOR = "#2E86C1"
OUTPUT_COLOR = "#27AE60"
NULL_COLOR = "#9E9E9E"


@dataclass
class Node:
    id: str
    label: str
    kind: str  # "source" | "action" | "output" | "null"


@dataclass
class Edge:
    src: str
    dst: str
    label: str = ""


def graph_elements(graph: Graph) -> tuple[list[Node], list[Edge]]:
    """Nodes and edges of the drawing (data sources, one node per layer, the output, null sinks)."""
    nodes: list[Node] = []
    edges: list[Edge] = []
    sources: dict[str, str] = {}
    for layer in graph.layers:
        lid = f"layer{layer.index}"
        nodes.append(Node(lid, f"{layer.action}\n#{layer.index}", "action"))
        if layer.is_data:
            for src in layer.src:
                if src not in sources:
                    sources[src] = f"src{len(sources)}"
                    nodes.append(Node(sources[src], src, "source"))
                edges.append(Edge(sources[src], lid))
        else:
            for name in dict.fromkeys(layer.src):
                for producer in graph.layers:
                    if not producer.is_save and name in producer.dst:
                        edges.append(Edge(f"layer{producer.index}", lid, name))
        if layer.is_save:
            nodes.append(Node("output", layer.dst[0], "output"))
            edges.append(Edge(lid, "output"))
        else:
            for i, name in enumerate(layer.dst):
                if name == NULL:
                    nid = f"null{layer.index}_{i}"
                    nodes.append(Node(nid, "null", "null"))
                    edges.append(Edge(lid, nid, f"branch {i}" if layer.n_branches > 1 else ""))
    return nodes, edges


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph) -> str:
    """Graphviz DOT source of the drawing."""
    nodes, edges = graph_elements(graph)
    style = {
        "source": f'shape=box, style="rounded,filled", fillcolor="{SOURCE_COLOR}", fontcolor=white',
        "action": f'shape=box, style="rounded,filled", fillcolor="{ACTION_COLOR}", fontcolor=white',
        "output": f'shape=box, style="rounded,filled", fillcolor="{OUTPUT_COLOR}", fontcolor=white',
        "null": f'shape=circle, style=filled, fillcolor="{NULL_COLOR}", fontsize=9',
    }
    lines = [
        "digraph dtl {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    lines += [f"  {n.id} [label={_q(n.label)}, {style[n.kind]}];" for n in nodes]
    lines += [f"  {e.src} -> {e.dst}" + (f" [label={_q(e.label)}]" if e.label else "") + ";" for e in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def layered_layout(nodes: list[Node], edges: list[Edge]) -> dict[str, tuple[float, float]]:
    """(x, y) per node: rank = longest path from a source; order within a rank by neighbour barycentre."""
    preds: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in edges:
        preds[e.dst].append(e.src)
    rank: dict[str, int] = {}

    def rank_of(nid: str, seen=()) -> int:
        if nid not in rank:
            rank[nid] = 1 + max((rank_of(p, (*seen, nid)) for p in preds[nid] if p not in seen), default=-1)
        return rank[nid]

    for n in nodes:
        rank_of(n.id)
    rows: dict[int, list[str]] = {}
    for n in nodes:
        rows.setdefault(rank[n.id], []).append(n.id)
    pos: dict[str, tuple[float, float]] = {}
    for r in sorted(rows):
        row = rows[r]
        if r > 0:

            def bary(nid: str) -> float:
                xs = [pos[p][0] for p in preds[nid] if p in pos]
                return sum(xs) / len(xs) if xs else 0.0

            row.sort(key=bary)
        for i, nid in enumerate(row):
            pos[nid] = (i - (len(row) - 1) / 2.0, -float(r))
    return pos


def render_matplotlib(graph: Graph, path: Path) -> None:
    """Draw the graph into an SVG or PNG file with matplotlib."""
    import matplotlib

    nodes, edges = graph_elements(graph)
    pos = layered_layout(nodes, edges)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # SVG text stays text (searchable)
        _draw_on_figure(nodes, edges, pos, path)


def _draw_on_figure(nodes, edges, pos, path: Path) -> None:
    from matplotlib.figure import Figure

    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    width, height = max(xs) - min(xs) + 2.5, max(ys) - min(ys) + 1.5
    fig = Figure(figsize=(max(4.0, 2.4 * width), max(3.0, 1.3 * height)))
    ax = fig.subplots()
    colors = {"source": SOURCE_COLOR, "action": ACTION_COLOR, "output": OUTPUT_COLOR, "null": NULL_COLOR}
    n_long = 0
    for e in edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        p0, p2 = np.array([x0, y0 - 0.22]), np.array([x1, y1 + 0.22])
        # Edges that skip ranks are bent (quadratic Bezier) so they do not hide behind the nodes in between.
        span = round(abs(y0 - y1))
        bend = 0.0
        if span > 1:  # alternate sides, wider for longer jumps
            bend = (0.35 + 0.25 * span) * (1 if n_long % 2 == 0 else -1)
            n_long += 1
        d = p2 - p0
        ctrl = (p0 + p2) / 2 + bend * np.array([d[1], -d[0]]) / max(float(np.hypot(*d)), 1e-9)
        t = np.linspace(0.0, 1.0, 30)[:, None]
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p2
        ax.plot(curve[:-2, 0], curve[:-2, 1], color="#555555", lw=1.2)
        ax.annotate(
            "",
            xy=tuple(p2),
            xytext=tuple(curve[-3]),
            arrowprops={"arrowstyle": "-|>", "color": "#555555", "lw": 1.2, "shrinkA": 0, "shrinkB": 0},
        )
        if e.label:
            mid = curve[len(curve) // 2]
            ax.text(
                mid[0],
                mid[1],
                e.label,
                fontsize=8,
                ha="center",
                va="center",
                color="#333333",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
            )
    for n in nodes:
        x, y = pos[n.id]
        ax.text(
            x,
            y,
            n.label,
            ha="center",
            va="center",
            fontsize=9,
            color="white",
            zorder=3,
            bbox={"boxstyle": "round,pad=0.4", "fc": colors[n.kind], "ec": "none"},
        )
    ax.set_xlim(min(xs) - 1.25, max(xs) + 1.25)
    ax.set_ylim(min(ys) - 0.75, max(ys) + 0.75)
    ax.axis("off")
    fig.tight_layout()
    atomic.write_file(path, lambda fh: fig.savefig(fh, format=path.suffix[1:], dpi=120))


def draw_graph(graph: Graph, path: str | Path, *, engine: str = "auto") -> str:
    """Write ``path`` (.dot, .svg or .png); returns the renderer used ("dot-source", "graphviz", "matplotlib")."""
    path = Path(path)
    fmt = path.suffix.lower()
    if fmt not in (".dot", ".svg", ".png"):
        raise ConfigError("output must end with .dot, .svg or .png", file=path)
    dot = to_dot(graph)
    if fmt == ".dot":
        atomic.write_bytes(path, dot.encode("utf-8"))
        return "dot-source"
    exe = shutil.which("dot") if engine in ("auto", "graphviz") else None
    if engine == "graphviz" and exe is None:
        raise ConfigError("Graphviz `dot` is not installed (use --engine matplotlib)")
    if exe:
        result = subprocess.run(
            [exe, f"-T{fmt[1:]}"], input=dot.encode("utf-8"), capture_output=True, check=False
        )
        if result.returncode != 0:
            raise ConfigError(f"graphviz failed: {result.stderr.decode(errors='replace').strip()}")
        atomic.write_bytes(path, result.stdout)
        return "graphviz"
    render_matplotlib(graph, path)
    return "matplotlib"
