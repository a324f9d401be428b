"""Self-contained HTML report (images embedded as base64 PNG) for the demo and recipes."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import cv2
import numpy as np

from unetkit.project.io import atomic_write_bytes


def png_data_uri(image: np.ndarray) -> str:
    """RGB (or gray) uint8 array → data: URI of a PNG."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def file_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4f}"
    return html.escape(str(value))


def metric_table(rows: list[dict[str, object]]) -> str:
    """A list of dicts with identical keys → an HTML table."""
    if not rows:
        return "<p>No metrics.</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[k])}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(
    path: Path,
    *,
    title: str,
    summary: list[tuple[str, str]],
    charts: list[Path],
    tables: list[tuple[str, list[dict[str, object]]]],
    panels: list[tuple[str, list[tuple[str, np.ndarray]]]],
) -> Path:
    """Write one HTML page: a summary list, chart PNGs, metric tables and rows of captioned image panels."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
        "th{background:#f3f3f3}.row{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:12px}"
        "figure{margin:0}figcaption{font-size:13px;color:#444}img{max-width:100%}"
        ".charts img{width:100%;max-width:1200px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
    ]
    parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary]
    parts.append("</ul>")
    if charts:
        parts.append("<h2>Training charts</h2><div class='row charts'>")
        parts += [f"<img alt='{html.escape(Path(c).stem)}' src='{file_data_uri(c)}'>" for c in charts]
        parts.append("</div>")
    for caption, rows in tables:
        parts.append(f"<h2>{html.escape(caption)}</h2>{metric_table(rows)}")
    if panels:
        parts.append("<h2>Image / ground truth / prediction</h2>")
        for name, images in panels:
            parts.append(f"<h3>{html.escape(name)}</h3><div class='row'>")
            for caption, img in images:
                parts.append(
                    f"<figure><img width='320' src='{png_data_uri(img)}'>"
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>"
                )
            parts.append("</div>")
    parts.append("</body></html>")
    atomic_write_bytes(Path(path), "".join(parts).encode("utf-8"))
    return Path(path)
