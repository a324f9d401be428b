"""`unetkit export onnx`: a checkpoint → ONNX with dynamic batch/height/width and unetkit metadata.

The metadata property ``unetkit`` (JSON) holds what inference needs besides the weights: ``class_title_to_idx``,
``out_classes``, ``input_size``, ``normalization`` (mean/std), ``resize``, ``model``, ``in_channels``, ``stride``,
``dynamic_spatial``;
:meth:`unetkit.inference.Predictor.from_onnx` reads it back.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from unetkit.errors import UnetkitError

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


def onnx_metadata(info) -> dict:
    """The ``unetkit`` metadata dict of a checkpoint info."""
    try:
        from unetkit.models import model_stride

        stride = model_stride(info.model_name, **info.model_options)
    except Exception:  # noqa: BLE001 - stride is informative only
        stride = None
    return {
        "format_version": 1,
        "model": info.model_name,
        "in_channels": info.in_channels,
        "num_classes": info.num_classes,
        "class_title_to_idx": info.class_title_to_idx,
        "out_classes": info.out_classes,
        "input_size": {"width": info.input_size[0], "height": info.input_size[1]},
        "normalization": {"mean": list(info.mean), "std": list(info.std)},
        "resize": info.resize,
        "stride": stride,
    }


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
    info = loaded.info
    model = _FirstOutput(loaded.model).eval()
    w, h = info.input_size
    meta = onnx_metadata(info)
    step = meta["stride"] or 16
    try:
        data = _export(model, torch.zeros(1, info.in_channels, h, w), opset, spatial=True)
        spatial = _spatially_dynamic(data, model, (2, info.in_channels, h + step, w + step))
        if not spatial:
            data = _export(model, torch.zeros(1, info.in_channels, h, w), opset, spatial=False)
    except Exception as exc:  # noqa: BLE001 - report exporter failures as user-facing errors
        raise UnetkitError(f"ONNX export of {info.model_name!r} failed: {exc}", file=checkpoint_dir) from None
    meta["dynamic_spatial"] = spatial
    proto = onnx.load_from_string(data)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "unetkit", json.dumps(meta)
    proto.producer_name = "unetkit"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(proto.SerializeToString())
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def check_parity(checkpoint_dir, onnx_path, *, tolerance: float = 1e-3, seed: int = 0) -> float:
    """Max |logit difference| between PyTorch and ONNX Runtime on random inputs of two batch sizes and two
    image sizes (input size, and input size + one stride step, which exercises the dynamic axes; only the input
    size for a model exported with fixed height/width).
    Raises UnetkitError beyond ``tolerance``."""
    import numpy as np

    from unetkit.inference.backends import OnnxBackend, TorchBackend
    from unetkit.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint_dir)
    info = loaded.info
    torch_backend, ort_backend = TorchBackend(loaded.model), OnnxBackend(onnx_path)
    stride = onnx_metadata(info).get("stride") or 16
    spatial = json.loads(ort_backend.metadata.get("unetkit", "{}")).get("dynamic_spatial", True)
    w, h = info.input_size
    rng = np.random.default_rng(seed)
    worst = 0.0
    sizes = ((1, (h, w)), (2, (h + stride, w + stride))) if spatial else ((1, (h, w)), (2, (h, w)))
    for n, (hh, ww) in sizes:
        x = rng.standard_normal((n, info.in_channels, hh, ww)).astype(np.float32)
        worst = max(worst, float(np.abs(torch_backend.logits(x) - ort_backend.logits(x)).max()))
    if not worst <= tolerance:
        raise UnetkitError(
            f"ONNX Runtime differs from PyTorch by {worst:.3g} (> {tolerance})", file=onnx_path
        )
    return worst
