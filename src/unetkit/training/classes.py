"""Class ↔ index mapping of the original (§2.3). Training only: inference reads the map from the checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from unetkit.errors import ConfigError, FormatError

BACKGROUND_COLOR = "#222222"


@dataclass
class ClassIndexing:
    out_classes: list[dict]  # class JSONs (all bitmap), saved in the checkpoint config
    class_title_to_idx: dict[str, int]  # excludes neutral
    neutral_index: int  # = max(index) + 1, used for rasterising GT and as ignore_index

    @property
    def num_classes(self) -> int:
        return max(self.class_title_to_idx.values()) + 1


def _class_json(title: str, color: str) -> dict:
    return {"title": title, "shape": "bitmap", "color": color, "geometry_config": {}, "hotkey": ""}


def create_segmentation_classes(
    classes: Iterable, background: str, neutral: str, *, file: object | None = None
) -> ClassIndexing:
    """``classes``: project ObjClass objects (or dicts with title/color) in meta order.

    bg → 0, every other non-neutral title sorted by Python string order → 1, 2, …; bg is appended to the
    outputs with colour #222222 when the project lacks it.
    """
    items = [
        (c["title"], c.get("color", "")) if isinstance(c, Mapping) else (c.title, c.color) for c in classes
    ]
    titles = [t for t, _ in items]
    dupes = sorted({t for t in titles if titles.count(t) > 1})
    if dupes:
        raise FormatError(f"duplicate class titles: {', '.join(dupes)}", file=file, json_path="$.classes")
    out_classes = [_class_json(t, color) for t, color in items if t != neutral]
    if background not in titles:
        out_classes.append(_class_json(background, BACKGROUND_COLOR))
    mapping = {background: 0}
    for i, title in enumerate(sorted(t for t in titles if t not in (neutral, background)), start=1):
        mapping[title] = i
    return ClassIndexing(out_classes, mapping, max(mapping.values()) + 1)


def continue_training_indexing(
    fresh: ClassIndexing,
    checkpoint_map: Mapping[str, int] | None,
    background: str,
    *,
    config_found: bool = True,
) -> ClassIndexing:
    """Use the checkpoint's map (continue_training); the set of titles must equal the project's."""
    if not config_found:
        raise ConfigError("Unable to continue_training, config for previous training wasn't found.")
    if checkpoint_map is None:
        raise ConfigError("Unable to continue_training, model does not have class mapping information.")
    if set(checkpoint_map) != set(fresh.class_title_to_idx):
        raise ConfigError(
            "Unable to continue_training, sets of classes for model and dataset do not match. "
            f"model: {sorted(checkpoint_map)}, dataset: {sorted(fresh.class_title_to_idx)}"
        )
    if checkpoint_map[background] != 0:
        raise ConfigError(
            f"Unable to start training. Effective integer id for class {background} does not match the requested "
            f"value 0 (got {checkpoint_map[background]})."
        )
    mapping = {str(k): int(v) for k, v in checkpoint_map.items()}
    return ClassIndexing(fresh.out_classes, mapping, max(mapping.values()) + 1)
