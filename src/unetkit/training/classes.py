"""Class ↔ index mapping of the original (docs/original-behaviour.md, "Class indexing").

Training only: inference reads the map from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping

from unetkit.errors import ConfigError
from unetkit.models.card import ClassMap


def continue_training_indexing(
    fresh: ClassMap,
    checkpoint_map: Mapping[str, int] | None,
    background: str,
    *,
    config_found: bool = True,
    checkpoint_multilabel: bool = False,
) -> ClassMap:
    """Use the checkpoint's map (continue_training); the set of titles must equal the project's, and the kind of
    model (softmax or multi-label) the config's."""
    if not config_found:
        raise ConfigError("Unable to continue_training, config for previous training wasn't found.")
    if checkpoint_map is None:
        raise ConfigError("Unable to continue_training, model does not have class mapping information.")
    if fresh.multilabel != checkpoint_multilabel:
        kind = "a multi-label model (no background channel)" if checkpoint_multilabel else "a softmax model"
        raise ConfigError(
            f"Unable to continue_training, the checkpoint is {kind}; set unetkit.multilabel to "
            f"{str(checkpoint_multilabel).lower()}, or use transfer_learning",
            json_path="$.unetkit.multilabel",
        )
    if set(checkpoint_map) != set(fresh.class_title_to_idx):
        raise ConfigError(
            "Unable to continue_training, sets of classes for model and dataset do not match. "
            f"model: {sorted(checkpoint_map)}, dataset: {sorted(fresh.class_title_to_idx)}"
        )
    if not fresh.multilabel and checkpoint_map[background] != 0:
        raise ConfigError(
            f"Unable to start training. Effective integer id for class {background} does not match the requested "
            f"value 0 (got {checkpoint_map[background]})."
        )
    return fresh.with_indices(checkpoint_map)
