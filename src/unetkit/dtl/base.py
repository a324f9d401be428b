"""Base class of every DTL layer and the per-call context the engine passes to `process()`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from unetkit.config_base import ConfigModel
from unetkit.dtl.class_mapping import apply_mapping, apply_tag_changes, resolve_mapping
from unetkit.dtl.element import Element
from unetkit.errors import GraphError
from unetkit.project import ProjectMeta

LAYER_KEYS = ("action", "src", "dst", "settings")


class StrictSettings(ConfigModel):
    """Settings of a layer whose original schema has required keys: unknown keys are rejected."""


class FreeSettings(BaseModel):
    """Settings of a layer whose original schema has no required keys: anything is accepted."""

    model_config = ConfigDict(extra="allow")


class LayerContext:
    """What `process()` may use besides the element. Use ONLY ``rng`` for randomness.

    ``rng`` may be given directly or built on first use by ``rng_factory`` (most layers never draw)."""

    def __init__(
        self, rng: np.random.Generator | None = None, in_meta=None, out_meta=None, *, rng_factory=None
    ):
        if rng is None and rng_factory is None:
            raise ValueError("LayerContext needs rng or rng_factory")
        self._rng, self._factory = rng, rng_factory
        self.in_meta: ProjectMeta | None = in_meta
        self.out_meta: ProjectMeta | None = out_meta

    @property
    def rng(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = self._factory()
        return self._rng


class Layer:
    """A DTL layer: validated settings, static meta computation and a streaming `process()`."""

    action: ClassVar[str]
    Settings: ClassVar[type[BaseModel]] = FreeSettings
    n_branches: ClassVar[int] = 1
    is_data: ClassVar[bool] = False
    is_save: ClassVar[bool] = False
    # True for layers whose result depends on the order elements arrive in (they force --workers 1).
    order_dependent: ClassVar[bool] = False
    # The settings key named in class-mapping errors ("classes_mapping", "classes", ...).
    mapping_setting: ClassVar[str | None] = None

    def __init__(self, index: int, src: list[str], dst: list[str], settings: BaseModel):
        self.index = index
        self.src = list(src)
        self.dst = list(dst)
        self.settings = settings
        self.label_map: dict[str, str | None] = {}
        self.in_meta: ProjectMeta | None = None
        self.out_meta: ProjectMeta | None = None

    # -- build time ------------------------------------------------------------------------------
    def validate(self) -> None:
        """Extra checks at graph build time; raise ``self.error(msg, key=...)``."""

    def error(self, message: str, key: str | None = None) -> GraphError:
        """A GraphError naming this layer and the offending key: "layer 3 (crop): settings.random_part: msg"."""
        if key and key.split(".")[0].split("[")[0] not in LAYER_KEYS:
            key = f"settings.{key}"
        where = f"layer {self.index} ({self.action})"
        err = GraphError(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        err.json_path = f"$[{self.index}]" + (f".{key}" if key else "")
        err.layer_index, err.action, err.key = self.index, self.action, key
        return err

    def class_mapping(self, in_meta: ProjectMeta) -> dict:
        """Class mapping of this layer (docs/original-behaviour.md, "DTL class mapping"); the default keeps
        every class."""
        return {"__other__": "__default__"}

    def tag_changes(self) -> tuple[list, list]:
        """(added tags: str or {"name", "value"} dicts, removed tag names)."""
        return [], []

    def output_meta(self, in_meta: ProjectMeta) -> ProjectMeta:
        """Output meta: the class mapping and tag changes applied to ``in_meta``.

        Also stores ``self.in_meta``, ``self.out_meta`` and ``self.label_map`` (input title -> output
        title or None) for use in `process()`.
        """
        mapping = self.class_mapping(in_meta)
        self.label_map = resolve_mapping(in_meta, mapping, layer=self)
        out = apply_mapping(in_meta, mapping, layer=self)
        added, removed = self.tag_changes()
        out = apply_tag_changes(out, added, removed, layer=self)
        self.in_meta, self.out_meta = in_meta, out
        return out

    # -- run time --------------------------------------------------------------------------------
    def process(self, el: Element, ctx: LayerContext) -> Iterator[tuple[int, Element]]:
        """Yield (branch, element) pairs; normal layers use branch 0. Yield nothing to drop."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.index} {self.action} {self.src}->{self.dst}>"
