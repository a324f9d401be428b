"""The top-level API a notebook user expects: `import unetkit` gives the main names, lazily and without torch."""

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import unetkit
from unetkit.project import Annotation, Bitmap, Label, ObjClass, ProjectMeta, ProjectWriter

# the package whose public surface each top-level name comes from
HOMES = {
    "unetkit.models": ["create_model", "list_models"],
    "unetkit.models.checkpoint": ["load_checkpoint"],
    "unetkit.project": ["Project"],
    "unetkit.inference": ["Predictor"],
    "unetkit.training": ["train"],
}
PUBLIC = {name: home for home, names in HOMES.items() for name in names}


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return set(out.split())


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_resolves_to_its_definition(name):
    value = getattr(unetkit, name)
    assert callable(value)
    assert value is getattr(importlib.import_module(PUBLIC[name]), name)
    assert name in unetkit.__all__ and name in dir(unetkit)


def test_all_lists_exactly_the_public_names():
    assert sorted(unetkit.__all__) == sorted([*PUBLIC, "auto"])


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'create_modle'"):
        unetkit.create_modle  # noqa: B018


def test_training_package_keeps_train_as_a_re_export():
    from unetkit.training import TrainResult, train

    assert train is unetkit.train
    assert TrainResult.__module__ == "unetkit.training.run"


def test_import_unetkit_does_not_load_torch():
    loaded = _modules_after("import unetkit")
    assert "torch" not in loaded
    assert not {m for m in loaded if m.startswith("unetkit.")}, "import unetkit must load no subpackage"


def test_import_unetkit_project_does_not_load_torch():
    loaded = _modules_after("import unetkit.project\nimport unetkit\nunetkit.Project")
    assert "unetkit.project" in loaded
    assert "torch" not in loaded


def test_create_model_forward_through_top_level_names():
    assert "unet" in unetkit.list_models()
    model = unetkit.create_model("unet", num_classes=3, in_channels=1, base_channels=4, depth=2).eval()
    with torch.no_grad():
        logits = model(torch.zeros(2, 1, 32, 48))
    assert tuple(logits.shape) == (2, 3, 32, 48)


def test_project_read_through_top_level_name(tmp_path):
    vessel = ObjClass(title="vessel", shape="bitmap", color="#FF0000")
    writer = ProjectWriter(tmp_path / "retina", ProjectMeta(classes=[vessel], tag_metas=[]))
    mask = np.zeros((8, 12), dtype=bool)
    mask[2:5, 3:9] = True
    label = Label(class_title="vessel", geometry=Bitmap.from_full_mask(mask), tags=[])
    writer.add_item("ds0", "a.png", np.full((8, 12, 3), 80, np.uint8), Annotation(8, 12, [label], []))
    writer.write_meta()

    project = unetkit.Project.read(tmp_path / "retina")
    (item,) = project.items()
    ann = item.read_annotation(project.meta)
    assert (project.name, item.name, [d.name for d in project.datasets]) == ("retina", "a.png", ["ds0"])
    np.testing.assert_array_equal(ann.labels[0].geometry.full_mask(8, 12), mask)


def test_checkpoint_round_trip_through_top_level_names(tmp_path):
    """create_model -> a checkpoint folder in the documented layout -> load_checkpoint -> Predictor."""
    options = {"base_channels": 4, "depth": 2}
    model = unetkit.create_model("unet", num_classes=2, **options).eval()
    size = {"width": 32, "height": 32}
    config = {
        "settings": {"input_size": size},
        "out_classes": [
            {"title": "vessel", "shape": "bitmap", "color": "#FF0000", "geometry_config": {}, "hotkey": ""},
            {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
        ],
        "class_title_to_idx": {"bg": 0, "vessel": 1},
        "unetkit": {"format_version": 1, "model": "unet", "model_options": options, "in_channels": 3,
                    "input_size": size, "resize": "bicubic"},
    }  # fmt: skip
    torch.save(model.state_dict(), tmp_path / "model.pt")
    (tmp_path / "config.json").write_text(json.dumps(config))

    loaded = unetkit.load_checkpoint(tmp_path)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))
    prediction = unetkit.Predictor.from_checkpoint(tmp_path).predict(np.full((20, 28, 3), 90, np.uint8))
    assert prediction.mask.shape == (20, 28)
    assert {c.title for c in prediction.classes} == {"bg", "vessel"}


def test_auto_is_callable_from_the_top_level():
    from unetkit.auto import planner

    assert "auto" in unetkit.__all__ and callable(unetkit.auto)
    assert unetkit.auto.plan_project is planner.plan_project  # the package, called, runs run.auto
