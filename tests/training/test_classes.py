import pytest

from unetkit.errors import ConfigError, FormatError
from unetkit.models.card import ClassMap
from unetkit.training.classes import continue_training_indexing


def cls(title, color="#FF0000"):
    return {"title": title, "color": color}


def test_spec_example_lemon_kiwi_neutral():
    ci = ClassMap.for_project([cls("lemon"), cls("kiwi", "#00FF00"), cls("neutral")], "bg", "neutral")
    assert [c["title"] for c in ci.out_classes] == ["lemon", "kiwi", "bg"]
    assert ci.out_classes[-1] == {
        "title": "bg",
        "shape": "bitmap",
        "color": "#222222",
        "geometry_config": {},
        "hotkey": "",
    }
    assert ci.out_classes[1]["color"] == "#00FF00" and ci.out_classes[1]["shape"] == "bitmap"
    assert ci.class_title_to_idx == {"bg": 0, "kiwi": 1, "lemon": 2}
    assert ci.neutral_index == 3 and ci.num_classes == 3


def test_bg_present_keeps_its_colour_and_position_and_sorting_is_codepoint():
    ci = ClassMap.for_project([cls("bg", "#000000"), cls("b"), cls("B"), cls("a")], "bg", "neutral")
    assert [c["title"] for c in ci.out_classes] == ["bg", "b", "B", "a"]
    assert ci.out_classes[0]["color"] == "#000000"
    assert ci.class_title_to_idx == {"bg": 0, "B": 1, "a": 2, "b": 3}
    assert ci.neutral_index == 4


def test_binary_vessel_project():
    ci = ClassMap.for_project([cls("vessel")], "bg", "neutral")
    assert ci.class_title_to_idx == {"bg": 0, "vessel": 1}
    assert ci.num_classes == 2 and ci.neutral_index == 2


def test_duplicate_titles_error():
    with pytest.raises(FormatError, match="duplicate"):
        ClassMap.for_project([cls("a"), cls("a")], "bg", "neutral")


def test_continue_training_checks():
    fresh = ClassMap.for_project([cls("kiwi"), cls("lemon")], "bg", "neutral")
    ok = continue_training_indexing(fresh, {"bg": 0, "lemon": 1, "kiwi": 2}, "bg")
    assert ok.class_title_to_idx == {"bg": 0, "lemon": 1, "kiwi": 2} and ok.neutral_index == 3
    with pytest.raises(ConfigError, match="sets of classes for model and dataset do not match"):
        continue_training_indexing(fresh, {"bg": 0, "lemon": 1}, "bg")
    with pytest.raises(ConfigError, match="config for previous training wasn't found"):
        continue_training_indexing(fresh, None, "bg", config_found=False)
    with pytest.raises(ConfigError, match="does not have class mapping information"):
        continue_training_indexing(fresh, None, "bg")
    with pytest.raises(ConfigError, match="Effective integer id for class bg"):
        continue_training_indexing(fresh, {"bg": 1, "lemon": 0, "kiwi": 2}, "bg")
