"""Helpers of the scale-out tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from unetkit.cli.main import main

GRAPH = Path(__file__).resolve().parents[2] / "examples" / "dtl" / "vessels_train.json"


def tree_hashes(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def dtl(graph: Path, project: Path, out: Path, *extra: str) -> int:
    return main(
        ["dtl", "run", str(graph), "--input", str(project), "--out", str(out), "--no-progress", *extra]
    )
