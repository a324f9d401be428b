"""Every config and graph in examples/ is valid for the code that reads it (so the recipes cannot rot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from unetkit.dtl.graph import build_graph
from unetkit.inference import parse_config as parse_inference
from unetkit.project import ObjClass, ProjectMeta
from unetkit.training import parse_config as parse_training

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# the classes of a CHASE import plus those of a prediction project (examples/vessels/compare.json reads one)
VESSEL_META = ProjectMeta(
    classes=[
        ObjClass(title=t, shape="bitmap", color=c, geometry_config={}, extra={})
        for t, c in (("vessel", "#FF0000"), ("vessel_unet", "#FF0000"), ("bg_unet", "#222222"))
    ],
    tag_metas=[],
)


def _files(pattern: str) -> list[Path]:
    files = sorted(EXAMPLES.glob(pattern))
    assert files, pattern
    return files


@pytest.mark.parametrize("path", _files("**/train*.json"), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_training_configs_parse(path):
    config = parse_training(json.loads(path.read_text()), file=path, warn=False)
    assert config.input_size.width % 16 == 0


@pytest.mark.parametrize("path", _files("**/inference*.json"), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_inference_configs_parse(path):
    assert parse_inference(json.loads(path.read_text()), file=path).mode.name


def _graphs() -> list[Path]:
    return [p for p in _files("**/*.json") if isinstance(json.loads(p.read_text()), list)]


@pytest.mark.parametrize("path", _graphs(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_dtl_graphs_build_with_their_input_meta(path):
    graph_json = json.loads(path.read_text())
    projects = {
        src.split("/")[0] for layer in graph_json if layer["action"] == "data" for src in layer["src"]
    }
    graph = build_graph(graph_json, {name: VESSEL_META for name in projects}, file=path)
    assert graph.output_meta is not None


def test_chase_recipes_match_their_model_input():
    """The sliding window of each CHASE recipe equals the model input: windows are never resized."""
    for suffix in ("", "_cpu"):
        train = json.loads((EXAMPLES / "chase" / f"train{suffix}.json").read_text())
        infer = json.loads((EXAMPLES / "chase" / f"inference{suffix}.json").read_text())
        patches = json.loads((EXAMPLES / "chase" / f"patches{suffix}.json").read_text())
        window = next(la for la in patches if la["action"] == "sliding_window")["settings"]["window"]
        assert train["input_size"] == infer["mode"]["window"] == window
