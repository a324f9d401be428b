"""The model card: the one reader/writer of config.json and of the ONNX metadata."""

from __future__ import annotations

import json

import pytest

from unetkit.errors import FormatError
from unetkit.models.card import ClassMap, ModelCard, Preprocessing, Provenance

OUT_CLASSES = [
    {"title": "vessel", "shape": "bitmap", "color": "#ff0000", "geometry_config": {}, "hotkey": ""},
    {"title": "bg", "shape": "bitmap", "color": "#222222", "geometry_config": {}, "hotkey": ""},
]
SETTINGS = {"input_size": {"width": 64, "height": 48}, "lr": 0.001, "epochs": 3}

# config.json exactly as the previous release (and training today, minus `neutral`) writes it
RELEASE_CONFIG = {
    "settings": SETTINGS,
    "out_classes": OUT_CLASSES,
    "class_title_to_idx": {"bg": 0, "vessel": 1},
    "unetkit": {
        "format_version": 1,
        "model": "unet",
        "model_options": {"base_channels": 4, "depth": 2},
        "in_channels": 3,
        "input_size": {"width": 64, "height": 48},
        "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "resize": "bicubic",
        "epoch": 2.5,
        "iteration": 40,
        "val_metrics": {"loss": 0.25, "dice": 0.75},
        "best_now": True,
        "seed": 0,
    },
}
ORIGINAL_CONFIG = {  # an original Supervisely checkpoint: no unetkit section
    "settings": {"input_size": {"width": 256, "height": 128}, "epochs": 3, "lr": 0.001},
    "out_classes": [
        {"title": t, "shape": "bitmap", "color": "#222222", "id": 7} for t in ("lemon", "kiwi", "bg")
    ],
    "class_title_to_idx": {"bg": 0, "kiwi": 1, "lemon": 2},
}


def test_release_config_reads_and_writes_back_byte_for_byte():
    card = ModelCard.from_config(json.loads(json.dumps(RELEASE_CONFIG)))
    assert card.model == "unet" and card.input_size == (64, 48) and card.num_classes == 2
    assert card.provenance.epoch == 2.5 and card.provenance.val_metrics["dice"] == 0.75
    assert [(c.index, c.title, c.color) for c in card.classes.classes] == [
        (0, "bg", "#222222"),
        (1, "vessel", "#FF0000"),
    ]
    assert card.to_json_bytes() == json.dumps(RELEASE_CONFIG, indent=2).encode()


def test_original_supervisely_layout_is_kept_verbatim():
    card = ModelCard.from_config(ORIGINAL_CONFIG)
    assert card.original and card.model == "unet_v2" and card.input_size == (256, 128)
    assert card.preprocessing == Preprocessing(input_size=(256, 128))  # ImageNet statistics, bicubic
    written = card.to_config()
    for key in ("settings", "out_classes", "class_title_to_idx"):
        assert json.dumps(written[key]) == json.dumps(
            ORIGINAL_CONFIG[key]
        )  # same keys, same order, same bytes
    assert card.classes.background == "bg"


def test_onnx_metadata_round_trip_and_previous_release_metadata():
    card = ModelCard.from_config(RELEASE_CONFIG)
    raw = card.to_onnx_metadata(stride=4, dynamic_spatial=True)
    meta = json.loads(raw)
    assert (
        meta["num_classes"] == 2
        and meta["stride"] == 4
        and meta["class_title_to_idx"] == {"bg": 0, "vessel": 1}
    )
    back = ModelCard.from_onnx_metadata(raw)
    assert back.model_copy(update={"settings": card.settings}) == card
    previous = {  # what `export onnx` wrote before the model card existed
        "format_version": 1, "model": "unet", "in_channels": 3, "num_classes": 2,
        "class_title_to_idx": {"bg": 0, "vessel": 1}, "out_classes": OUT_CLASSES,
        "input_size": {"width": 64, "height": 48},
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}, "resize": "bilinear",
        "stride": 4, "dynamic_spatial": False,
    }  # fmt: skip
    old = ModelCard.from_onnx_metadata(json.dumps(previous))
    assert old.preprocessing == Preprocessing(
        input_size=(64, 48), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), resize="bilinear"
    )
    with pytest.raises(FormatError, match="no 'unetkit' metadata"):
        ModelCard.from_onnx_metadata(None, file="m.onnx")


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (
            lambda c: c["unetkit"]["normalization"].update(std=[0.2, 0.0, 0.2]),
            r"\$\.unetkit\.normalization\.std",
        ),
        (
            lambda c: c["unetkit"]["normalization"].update(mean=[float("nan")]),
            r"\$\.unetkit\.normalization\.mean",
        ),
        (lambda c: c["unetkit"].update(in_channels=0), r"\$\.unetkit\.in_channels"),
        (lambda c: c["unetkit"].update(resize="lanczos"), r"\$\.unetkit\.resize"),
        (lambda c: c["unetkit"].update(format_version=2), r"\$\.unetkit\.format_version"),
        (lambda c: c["unetkit"]["input_size"].update(width=-1), r"\$\.unetkit\.input_size\.width"),
        (lambda c: c["class_title_to_idx"].update(vessel=-1), r"\$\.class_title_to_idx"),
        (lambda c: c["class_title_to_idx"].clear(), r"\$\.class_title_to_idx"),
        (lambda c: c["out_classes"][1].pop("title"), r"\$\.out_classes\[1\]\.title"),
        (lambda c: c.pop("out_classes"), r"\$\.out_classes"),
    ],
)
def test_invalid_cards_name_file_and_json_path(edit, where):
    config = json.loads(json.dumps(RELEASE_CONFIG))
    edit(config)
    with pytest.raises(FormatError, match=rf"^ck/config\.json: {where}: "):
        ModelCard.from_config(config, file="ck/config.json")


def test_original_checkpoint_without_input_size_is_refused():
    config = {**ORIGINAL_CONFIG, "settings": {"epochs": 1}}
    with pytest.raises(FormatError, match=r"config\.json: \$\.settings\.input_size"):
        ModelCard.from_config(config, file="config.json")


def test_class_map_roles_and_project_indexing():
    cm = ClassMap.for_project(
        [{"title": "lemon", "color": "#00FF00"}, {"title": "kiwi", "color": "#0000FF"}, {"title": "neutral"}],
        "bg",
        "neutral",
    )
    assert cm.class_title_to_idx == {"bg": 0, "kiwi": 1, "lemon": 2}
    assert (cm.background, cm.neutral, cm.neutral_index, cm.num_classes) == ("bg", "neutral", 3, 3)
    assert [c["title"] for c in cm.out_classes] == ["lemon", "kiwi", "bg"]
    moved = cm.with_indices({"bg": 0, "lemon": 1, "kiwi": 2})
    assert [c.title for c in moved.classes] == ["bg", "lemon", "kiwi"] and moved.out_classes == cm.out_classes


def test_new_fields_round_trip():
    card = ModelCard(
        model="unet",
        in_channels=4,
        classes=ClassMap(out_classes=tuple(OUT_CLASSES), class_title_to_idx={"bg": 0, "vessel": 1}, neutral="n",
                         multilabel=True),
        preprocessing=Preprocessing(input_size=(32, 32), mean=(0.1,) * 4, std=(0.2,) * 4),
        provenance=Provenance(epoch=1.0, plan={"patch_size": [32, 32]}),
    )  # fmt: skip
    back = ModelCard.from_config(json.loads(card.to_json_bytes()))
    assert back == card
    described = back.describe()
    assert described["multilabel"] and described["in_channels"] == 4
    assert described["provenance"]["plan"] == {"patch_size": [32, 32]}
    assert [c["title"] for c in described["classes"]] == ["bg", "vessel"]


def test_init_only_options_are_never_stored():
    card = ModelCard(
        model="unet_v2", model_options={"compact": True, "encoder_weights": "imagenet"},
        classes=ClassMap(out_classes=tuple(OUT_CLASSES), class_title_to_idx={"bg": 0, "vessel": 1}),
        preprocessing=Preprocessing(input_size=(32, 32)),
    )  # fmt: skip
    assert card.model_options == {"compact": True}
