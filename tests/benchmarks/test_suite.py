"""benchmarks/suite.py end to end on a tiny generated suite: import as shipped, auto, the recipe, the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import suite  # noqa: E402


def write_tiny_ddti(root: Path, count: int = 8, side: int = 144) -> Path:
    """A devsuite-like folder as DDTI ships: grey PNG images, GIF {0, 255} masks, ``split.csv``."""
    folder = root / "devsuite" / "ddti_thyroid_us"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rng = np.random.default_rng(0)
    rows = ["image,mask,split"]
    yy, xx = np.mgrid[:side, :side]
    for i in range(count):
        cy, cx, r = rng.integers(30, side - 30, 2).tolist() + [int(rng.integers(12, 24))]
        nodule = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        picture = rng.normal(90, 20, (side, side)) + 80 * nodule
        Image.fromarray(picture.clip(0, 255).astype(np.uint8)).save(folder / "images" / f"{i}.png")
        Image.fromarray((nodule * 255).astype(np.uint8)).save(folder / "masks" / f"{i}.gif")
        split = "test" if i % 4 == 3 else "train"
        rows.append(f"images/{i}.png,masks/{i}.gif,{split}")
    (folder / "split.csv").write_text("\n".join(rows) + "\n")
    return root


def test_the_suite_runs_a_row_and_builds_its_table_in_parts(tmp_path, capsys):
    root = write_tiny_ddti(tmp_path / "data")
    out = tmp_path / "out"
    assert suite.main(["--datasets", "ddti", "--budgets", "0.5", "--root", str(root), "--out", str(out)]) == 0
    (row,) = [json.loads(line) for line in (out / "suite.jsonl").read_text().splitlines()]
    assert row["dataset"] == "ddti" and row["budget_min"] == 0.5
    assert 0 <= row["auto_dice"] <= 1 and 0 <= row["recipe_dice"] <= 1
    assert row["margin"] == round(row["auto_dice"] - row["recipe_dice"], 4)
    assert row["auto_steps"] > 0 and row["recipe_steps"] > 0
    assert row["cpu"] and row["isa"] and row["commit"]
    # the test images stayed out of training: the split projects hold 6 and 2 images
    from unetkit.project import Project

    assert len(Project.read(out / "data" / "ddti_train")) == 6
    assert len(Project.read(out / "data" / "ddti_test")) == 2
    printed = capsys.readouterr().out
    assert "ddti" in printed and "margin" in printed
    # a second call with the same commit and CPU reuses the row instead of running it again
    assert suite.main(["--datasets", "ddti", "--budgets", "0.5", "--root", str(root), "--out", str(out)]) == 0
    assert len((out / "suite.jsonl").read_text().splitlines()) == 1
