"""`unetkit serve` argument handling (the server itself runs in test_server_load / test_browser)."""

from __future__ import annotations

import pytest

from unetkit.cli.main import main


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--model",
        "--host",
        "--port",
        "--backend",
        "--max-batch",
        "--max-wait-ms",
        "--max-queue",
        "--timeout-s",
        "--max-upload-mb",
        "--max-pixels",
    ):
        assert flag in out


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "checkpoint folder not found" in capsys.readouterr().err


def test_bad_settings_are_config_errors(tiny_checkpoint, capsys):
    assert main(["serve", "--model", str(tiny_checkpoint), "--max-batch", "0"]) == 2
    assert "max_batch" in capsys.readouterr().err
    assert main(["serve", "--model", str(tiny_checkpoint), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_backend_choice_is_checked(tiny_checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--model", str(tiny_checkpoint), "--backend", "tensorflow"])
    assert "invalid choice" in capsys.readouterr().err


def test_serving_never_imports_training(tiny_checkpoint):
    import subprocess
    import sys

    code = f"""
import io, sys
from PIL import Image
from fastapi.testclient import TestClient
from unetkit.serving.app import create_app
buf = io.BytesIO()
Image.new("RGB", (40, 30), (200, 200, 200)).save(buf, format="PNG")
app = create_app({str(tiny_checkpoint)!r}, device="cpu")
with TestClient(app) as c:
    assert c.post("/model/inference", files={{"image": ("a.png", buf.getvalue(), "image/png")}}).status_code == 200
    assert c.post("/v1/predict", files={{"image": ("a.png", buf.getvalue(), "image/png")}}).status_code == 200
    assert c.post("/model/get_out_meta", data={{"mode": '{{"name": "sliding_window"}}'}}).status_code == 200
bad = sorted(m for m in sys.modules if m.startswith("unetkit.training"))
print("TRAINING_MODULES", bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "TRAINING_MODULES []" in out.stdout
