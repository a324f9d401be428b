"""Forward-pass backends: PyTorch (device, AMP) and ONNX Runtime. Both map N×C×h×w float32 → logits."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from unetkit.errors import UnetkitError


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

    def __init__(self, model: torch.nn.Module, device: torch.device | str = "cpu", amp: bool = False):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.amp = amp

    def _autocast(self):
        if not self.amp:
            return nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @torch.inference_mode()
    def logits(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
        with self._autocast():
            out = self.model(t)
        if isinstance(out, (tuple, list)):  # U²-Net style: first output is the fused map
            out = out[0]
        return out.float().cpu().numpy()

    @torch.inference_mode()
    def probabilities(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device, non_blocking=True)
        with self._autocast():
            out = self.model(t)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return torch.softmax(out.float(), dim=1).cpu().numpy()


class OnnxBackend:
    name = "onnxruntime"

    def __init__(self, path: str | Path, device: torch.device | str = "cpu", threads: int | None = None):
        import onnxruntime as ort

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
        z = z - z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
