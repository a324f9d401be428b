"""State-dict utilities: wrapper-agnostic loading (``module.`` / ``_orig_mod.`` prefixes) and transfer learning."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unetkit.errors import UnetkitError


@dataclass
class TransferReport:
    """Result of :func:`transfer_weights`; all lists hold state-dict key names of the target model."""

    copied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # matched a skip substring
    missing: list[str] = field(default_factory=list)  # in the model, not in the state → kept their init
    unexpected: list[str] = field(default_factory=list)  # in the state, not in the model → ignored
    shape_mismatches: list[tuple[str, tuple, tuple]] = field(default_factory=list)  # (key, state, model)


def load_state_file(path) -> dict:
    """``torch.load(path, weights_only=True)`` with a clear UnetkitError for missing/corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise UnetkitError("weights file not found", file=path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt / truncated / not a torch file / unsafe pickle
        raise UnetkitError(
            f"cannot read weights ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})", file=path
        ) from None
    if not isinstance(state, dict):
        raise UnetkitError(f"expected a state dict, found {type(state).__name__}", file=path)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def unwrap_model(model: nn.Module) -> nn.Module:
    """Strip DataParallel/DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def strip_wrapper_prefixes(key: str, prefixes=("module.", "_orig_mod.")) -> str:
    changed = True
    while changed:
        changed = False
        for p in prefixes:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def normalize_state_dict(state: dict, model: nn.Module) -> dict[str, torch.Tensor]:
    """Map a state dict's keys onto ``model``'s naming (adds/strips ``module.`` / ``_orig_mod.``).

    Non-tensor entries (e.g. milesial's ``mask_values``) are dropped.
    """
    if not isinstance(state, dict):
        raise UnetkitError(
            f"expected a state dict (a mapping of names to tensors), got {type(state).__name__}"
        )
    target_keys = list(model.state_dict().keys())
    bare = {strip_wrapper_prefixes(k): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    # prefix shared by every target key (e.g. "module." for a DataParallel model)
    prefix = ""
    if target_keys:
        first = target_keys[0]
        prefix = first[: len(first) - len(strip_wrapper_prefixes(first))]
        if not all(k.startswith(prefix) for k in target_keys):
            prefix = ""
    return {prefix + k: v for k, v in bare.items()}


def _describe(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … ({len(keys)} in all)" if len(keys) > limit else "")


def load_state_dict_flexible(model: nn.Module, state: dict, strict: bool = True):
    """``model.load_state_dict`` that accepts keys with or without ``module.``; strict errors are UnetkitError."""
    mapped = normalize_state_dict(state, model)
    own = model.state_dict()
    mismatched = [
        f"{k} (file {tuple(v.shape)} vs model {tuple(own[k].shape)})"
        for k, v in mapped.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if strict:
        # BatchNorm fills num_batches_tracked itself for pre-0.4.1 saves; do not demand it.
        missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
        unexpected = [k for k in mapped if k not in own]
        problems = []
        if missing:
            problems.append(f"missing keys: {_describe(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_describe(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_describe(mismatched)}")
        if problems:
            raise UnetkitError(f"weights do not fit {type(model).__name__}: " + "; ".join(problems))
    elif mismatched:
        raise UnetkitError(
            f"weights do not fit {type(model).__name__}: shape mismatches: {_describe(mismatched)}"
        )
    return model.load_state_dict(mapped, strict=strict)


def transfer_weights(model: nn.Module, state: dict, skip_substrings=("last_conv",)) -> TransferReport:
    """Copy every key of ``state`` that exists in ``model`` with the same shape (transfer learning).

    Keys containing a ``skip_substrings`` entry are not copied (the original dropped ``last_conv``).
    Shape mismatches are reported, not raised; the caller decides.
    """
    mapped = normalize_state_dict(state, model)
    own = model.state_dict()
    report = TransferReport()
    for key, value in mapped.items():
        if any(s in key for s in skip_substrings):
            report.skipped.append(key)
        elif key not in own:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(own[key].shape):
            report.shape_mismatches.append((key, tuple(value.shape), tuple(own[key].shape)))
        else:
            report.copied.append(key)
    report.missing = [k for k in own if k not in mapped]
    with torch.no_grad():
        for key in report.copied:
            own[key].copy_(mapped[key])
    return report
