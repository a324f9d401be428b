"""Run folder layout, atomic checkpoint pointers and the resume state.

```
RUN_DIR/
  train_config.json        the merged config of the run (settings)
  state.pt                 resume state (optimizer, scheduler, epoch/iteration, plan, RNG, ...); torch.load-able
                           with weights_only=True
  metrics.jsonl            one JSON record per line (train every iteration, val, checkpoint, lr, nonfinite)
  charts.png               loss / accuracy / dice against epoch
  tensorboard/             TensorBoard event files
  checkpoints/00000000/    model.pt + config.json (one per validation, as the original's results/%08d)
  checkpoints/last.json    {"checkpoint": "0000000k", "path": "checkpoints/0000000k", "epoch": .., ...}
  checkpoints/best.json    the same for the lowest validation loss so far
```
Pointers are small JSON files (no symlinks) so they work on every OS and file system.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from unetkit import atomic
from unetkit.errors import ConfigError, UnetkitError
from unetkit.project import atomic_write_bytes, atomic_write_json

STATE_FILE = "state.pt"
CONFIG_FILE = "train_config.json"
CHECKPOINTS = "checkpoints"
STATE_VERSION = 1


class RunDir:
    def __init__(self, path):
        self.path = Path(path)
        self.checkpoints = self.path / CHECKPOINTS

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def checkpoint_dir(self, idx: int) -> Path:
        return self.checkpoints / f"{idx:08d}"

    def has_run(self) -> bool:
        return self.state_path.exists() or (self.checkpoints.is_dir() and any(self.checkpoints.iterdir()))

    def prepare_new(self, settings: dict) -> None:
        """Create the folder for a new run; refuses one that already holds a run (nothing is overwritten)."""
        if self.has_run():
            raise ConfigError(
                "the output folder already holds a training run; pass --resume to continue it or choose another --out",
                file=self.path,
            )
        atomic.make_folder(self.checkpoints)
        atomic_write_json(self.path / CONFIG_FILE, settings)

    def saved_settings(self) -> dict:
        path = self.path / CONFIG_FILE
        if not path.is_file():
            raise ConfigError("cannot resume: train_config.json is missing", file=self.path)
        return json.loads(path.read_text(encoding="utf-8"))

    def save_state(self, state: dict) -> None:
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.state_path, buf.getvalue())

    def load_state(self) -> dict | None:
        """The resume state, or None when the run has not reached its first checkpoint."""
        if not self.state_path.exists():
            return None
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise UnetkitError(f"cannot read the resume state: {exc}", file=self.state_path) from None
        if state.get("format_version") != STATE_VERSION:
            raise UnetkitError("unsupported resume state version", file=self.state_path)
        return state

    def write_pointer(self, name: str, idx: int, info: dict) -> None:
        sub = f"{idx:08d}"
        atomic_write_json(
            self.checkpoints / f"{name}.json", {"checkpoint": sub, "path": f"{CHECKPOINTS}/{sub}", **info}
        )

    def read_pointer(self, name: str) -> Path | None:
        """The checkpoint folder a pointer (``best`` / ``last``) names, or None."""
        path = self.checkpoints / f"{name}.json"
        if not path.is_file():
            return None
        return self.path / json.loads(path.read_text(encoding="utf-8"))["path"]
