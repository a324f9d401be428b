"""Forward-pass backends: PyTorch (device, AMP, channels_last, torch.compile) and ONNX Runtime (fp32).
Both map N×C×h×w float32 → float32 logits / probabilities (in fp32: a softmax over the channels, or one sigmoid per
channel for multi-label models: ``activation="sigmoid"``, which the :class:`Predictor` sets from the model card)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unetkit.errors import UnetkitError
from unetkit.models.numerics import COMPILE_MODES, choose_compile, compile_module, resolve_numerics


def resolve_device(device: str | None, gpu_device: int = 0) -> torch.device:
    """``None``/"auto" → ``cuda:<gpu_device>`` when CUDA is available, else CPU; anything else as given."""
    if device in (None, "auto"):
        return torch.device(f"cuda:{gpu_device}" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UnetkitError(f"device {device!r} requested but CUDA is not available")
    return dev


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        amp: str | bool = "auto",
        compile: str = "off",
        activation: str = "softmax",
    ):
        """``amp``: a :data:`~unetkit.models.numerics.AMP_MODES` mode (``True``/``False``: the old flag).
        ``compile``: off, on, or auto (decided by a short probe on the first batch)."""
        if compile not in COMPILE_MODES:
            raise UnetkitError(
                f"unknown compile mode {compile!r}; expected one of {', '.join(COMPILE_MODES)}"
            )
        self.device = torch.device(device)
        self.numerics = resolve_numerics(amp, self.device)
        self.model = self.numerics.prepare_model(model.to(self.device).eval())
        self.compile = compile
        self.net = compile_module(self.model) if compile == "on" else self.model
        self.activation = activation

    @torch.inference_mode()
    def _forward(self, x: np.ndarray) -> torch.Tensor:
        t = self.numerics.prepare_input(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        if self.compile == "auto":  # decided once, on the first real batch
            self.compile = "on" if choose_compile(self.model, t, self.numerics) else "off"
            self.net = compile_module(self.model) if self.compile == "on" else self.model
        with self.numerics.autocast():
            out = self.net(t)
        if isinstance(out, (tuple, list)):  # U²-Net style: first output is the fused map
            out = out[0]
        return out.float().contiguous()  # channels_last → NCHW rows for numpy

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x).cpu().numpy()

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            z = self._forward(x)
            p = torch.sigmoid(z) if self.activation == "sigmoid" else torch.softmax(z, dim=1)
            return p.cpu().numpy()


class OnnxBackend:
    name = "onnxruntime"

    def __init__(
        self,
        path: str | Path,
        device: torch.device | str = "cpu",
        threads: int | None = None,
        activation: str = "softmax",
    ):
        import onnxruntime as ort

        self.activation = activation

        self.path = Path(path)
        if not self.path.is_file():
            raise UnetkitError("ONNX model not found", file=self.path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # noqa: BLE001 - invalid / unreadable model
            raise UnetkitError(f"cannot load the ONNX model: {exc}", file=self.path) from None
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        if self.activation == "sigmoid":
            return (np.tanh(z * np.float32(0.5)) + np.float32(1.0)) * np.float32(0.5)  # sigmoid, no overflow
        z = z - z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
