"""`unetkit export onnx`: a checkpoint → ONNX with dynamic batch/height/width and unetkit metadata.

The metadata property ``unetkit`` (JSON) holds the model card (:mod:`unetkit.models.card`) plus ``stride`` and
``dynamic_spatial``; :meth:`unetkit.inference.Predictor.from_onnx` reads the card back.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import torch

from unetkit import atomic
from unetkit.errors import UnetkitError
from unetkit.models.card import ONNX_METADATA_KEY

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class _FirstOutput(torch.nn.Module):
    """Exports only the fused/main output of models that return tuples."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)
        return out[0] if isinstance(out, (tuple, list)) else out


def model_stride_of(card) -> int | None:
    """The input-size multiple the card's architecture needs (informative; None when unknown)."""
    try:
        from unetkit.models import model_stride

        return model_stride(card.model, **card.model_options)
    except Exception:  # noqa: BLE001 - stride is informative only
        return None


def _export(model, dummy, opset: int, spatial: bool) -> bytes:
    axes = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            buf,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return buf.getvalue()


def _spatially_dynamic(data: bytes, model, shape: tuple) -> bool:
    """True when the exported graph gives the PyTorch output shape at another input size too (models that
    compute padding from the input size in Python, e.g. valid-padding U-Net, bake it into the trace)."""
    import numpy as np
    import onnxruntime as ort

    x = torch.zeros(shape)
    with torch.inference_mode():
        expected = tuple(model(x).shape)
    try:
        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = sess.run(None, {INPUT_NAME: np.zeros(shape, np.float32)})[0].shape
    except Exception:  # noqa: BLE001 - the graph cannot run at that size
        return False
    return tuple(got) == expected


def export_onnx(checkpoint_dir, out_path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export a checkpoint folder to ``out_path`` (written atomically); returns the path.

    Batch, height and width are dynamic; a model whose traced graph only works at the input size gets a
    fixed height/width (metadata ``dynamic_spatial: false``) — unetkit always feeds the input size anyway.
    """
    import onnx

    from unetkit.models.checkpoint import load_checkpoint

    out_path = Path(out_path)
    loaded = load_checkpoint(checkpoint_dir, map_location="cpu")
    card = loaded.card
    model = _FirstOutput(loaded.model).eval()
    w, h = card.input_size
    stride = model_stride_of(card)
    step = stride or 16
    try:
        data = _export(model, torch.zeros(1, card.in_channels, h, w), opset, spatial=True)
        spatial = _spatially_dynamic(data, model, (2, card.in_channels, h + step, w + step))
        if not spatial:
            data = _export(model, torch.zeros(1, card.in_channels, h, w), opset, spatial=False)
    except Exception as exc:  # noqa: BLE001 - report exporter failures as user-facing errors
        raise UnetkitError(f"ONNX export of {card.model!r} failed: {exc}", file=checkpoint_dir) from None
    proto = onnx.load_from_string(data)
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = card.to_onnx_metadata(stride=stride, dynamic_spatial=spatial)
    proto.producer_name = "unetkit"
    return atomic.write_bytes(out_path, proto.SerializeToString())


def check_parity(checkpoint_dir, onnx_path, *, tolerance: float = 1e-3, seed: int = 0) -> float:
    """Max |logit difference| between PyTorch and ONNX Runtime on random inputs of two batch sizes and two
    image sizes (input size, and input size + one stride step, which exercises the dynamic axes; only the input
    size for a model exported with fixed height/width).
    Raises UnetkitError beyond ``tolerance``."""
    import numpy as np

    from unetkit.inference.backends import OnnxBackend, TorchBackend
    from unetkit.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint_dir)
    card = loaded.card
    torch_backend, ort_backend = TorchBackend(loaded.model, amp="off"), OnnxBackend(onnx_path)  # fp32 both
    stride = model_stride_of(card) or 16
    spatial = json.loads(ort_backend.metadata.get(ONNX_METADATA_KEY, "{}")).get("dynamic_spatial", True)
    w, h = card.input_size
    rng = np.random.default_rng(seed)
    worst = 0.0
    sizes = ((1, (h, w)), (2, (h + stride, w + stride))) if spatial else ((1, (h, w)), (2, (h, w)))
    for n, (hh, ww) in sizes:
        x = rng.standard_normal((n, card.in_channels, hh, ww)).astype(np.float32)
        worst = max(worst, float(np.abs(torch_backend.logits(x) - ort_backend.logits(x)).max()))
    if not worst <= tolerance:
        raise UnetkitError(
            f"ONNX Runtime differs from PyTorch by {worst:.3g} (> {tolerance})", file=onnx_path
        )
    return worst
