"""The classes of a model (part of the model card): titles, colours, output indices and roles.

Original behaviour: docs/original-behaviour.md, "Class indexing".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from unetkit.errors import FormatError

BACKGROUND_COLOR = "#222222"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelClass(_Frozen):
    """One output class of a model: channel index, title, colour (``#RRGGBB``) and shape."""

    index: int
    title: str
    color: str
    shape: str = "bitmap"


class ClassMap(_Frozen):
    """The classes of a model: the saved class JSONs, title → output index, and the class roles.

    ``class_title_to_idx`` excludes the neutral class; ``background`` is the title with index 0 (softmax
    models); ``multilabel`` models have one independent sigmoid channel per class (overlaps allowed), no
    background channel: ``class_title_to_idx`` maps each foreground class to its channel 0..K-1.
    """

    out_classes: tuple[dict, ...]
    class_title_to_idx: dict[str, int]
    neutral: str | None = None
    multilabel: bool = False

    @property
    def num_classes(self) -> int:
        return max(self.class_title_to_idx.values()) + 1

    @property
    def neutral_index(self) -> int:
        """The label of neutral (ignored) pixels: one past the last output index."""
        return self.num_classes

    @property
    def background(self) -> str | None:
        if self.multilabel:
            return None
        return next((t for t, i in self.class_title_to_idx.items() if i == 0), None)

    @property
    def activation(self) -> Literal["softmax", "sigmoid"]:
        """How logits become probabilities: one sigmoid per channel (multi-label) or a softmax over channels."""
        return "sigmoid" if self.multilabel else "softmax"

    @property
    def classes(self) -> list[ModelClass]:
        """Output classes = out_classes ∩ class_title_to_idx, in class_title_to_idx order."""
        by_title = {c["title"]: c for c in self.out_classes}
        return [
            ModelClass(
                index=int(idx),
                title=title,
                color=str(by_title[title].get("color", "#FF0000")).upper(),
                shape=str(by_title[title].get("shape", "bitmap")),
            )
            for title, idx in self.class_title_to_idx.items()
            if title in by_title
        ]

    @classmethod
    def for_project(
        cls,
        classes: Iterable,
        background: str,
        neutral: str,
        *,
        multilabel: bool = False,
        file: object | None = None,
    ) -> ClassMap:
        """The original's indexing of project classes (ObjClass objects or dicts with title/color).

        background → 0, every other non-neutral title in Python string order → 1, 2, …; the background class
        is appended to the outputs (colour #222222) when the project lacks it. ``multilabel``: every title but
        background and neutral in Python string order → 0, 1, … (no background channel).
        """
        items = [
            (c["title"], c.get("color", "")) if isinstance(c, Mapping) else (c.title, c.color)
            for c in classes
        ]
        titles = [t for t, _ in items]
        dupes = sorted({t for t in titles if titles.count(t) > 1})
        if dupes:
            raise FormatError(f"duplicate class titles: {', '.join(dupes)}", file=file, json_path="$.classes")
        if multilabel:
            return _multilabel_map(items, background, neutral, file)
        out = [_class_json(t, color) for t, color in items if t != neutral]
        if background not in titles:
            out.append(_class_json(background, BACKGROUND_COLOR))
        mapping = {background: 0}
        for i, title in enumerate(sorted(t for t in titles if t not in (neutral, background)), start=1):
            mapping[title] = i
        return cls(out_classes=tuple(out), class_title_to_idx=mapping, neutral=neutral)

    def with_indices(self, mapping: Mapping[str, int]) -> ClassMap:
        """The same classes with another title → index map (continue_training, resume)."""
        return self.model_copy(update={"class_title_to_idx": {str(k): int(v) for k, v in mapping.items()}})


MAX_MULTILABEL_CLASSES = 30  # training packs a pixel's classes and the neutral flag into one int32


def _multilabel_map(
    items: list[tuple[str, str]], background: str, neutral: str, file: object | None
) -> ClassMap:
    fg = sorted((t, color) for t, color in items if t not in (neutral, background))
    if not fg:
        raise FormatError(
            f"multi-label training needs at least one class besides {background!r} and {neutral!r}",
            file=file,
            json_path="$.classes",
        )
    if len(fg) > MAX_MULTILABEL_CLASSES:
        raise FormatError(
            f"multi-label models have at most {MAX_MULTILABEL_CLASSES} classes, the project has {len(fg)}",
            file=file,
            json_path="$.classes",
        )
    return ClassMap(
        out_classes=tuple(_class_json(t, color) for t, color in fg),
        class_title_to_idx={t: i for i, (t, _) in enumerate(fg)},
        neutral=neutral,
        multilabel=True,
    )


def _class_json(title: str, color: str) -> dict:
    return {"title": title, "shape": "bitmap", "color": color, "geometry_config": {}, "hotkey": ""}
