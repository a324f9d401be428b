"""Runs docs/walkthrough.md end to end: every ```bash block, as written, in a temporary "repo root".

Only size knobs change, each one explicit below:

* ``../shared/data/chasedb1`` holds 3 CHASE DB1 images (01L, 01R and 09L) downscaled 4x instead of 20 full-size
  ones, so the commands see the same folder layout and file names (``vessels`` gets 2 images, ``vessels_test`` 1);
* ``examples/vessels/train_cpu.json`` is replaced by a copy with 1 epoch, a 64x64 input, a 4-channel U-Net and
  no data-loader worker processes;
* port 8000 becomes a free port.

Blocks preceded by ``<!-- walkthrough-test: skip ... -->`` are not run (``bash run.sh setup`` needs the network;
the 4-GPU training command must equal the CPU one except for its config file, which is checked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from unetkit.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = REPO_ROOT / "docs" / "walkthrough.md"
SKIP_MARK = "<!-- walkthrough-test: skip"
BLOCK_RE = re.compile(r"^(?P<before>.*?)^```bash\n(?P<code>.*?)^```\n", re.S | re.M)
CPU_CONFIG = "examples/vessels/train_cpu.json"
GPU_CONFIG = "examples/train.json"
IMAGES = ("Image_01L", "Image_01R", "Image_09L")
SCALE = 4


def bash_blocks(text: str) -> list[tuple[str, bool]]:
    """(code, skipped) for every ```bash block, in order."""
    blocks, pos = [], 0
    while m := BLOCK_RE.search(text, pos):
        before = m.group("before").rstrip().splitlines()
        skipped = bool(before) and before[-1].startswith(SKIP_MARK)
        blocks.append((m.group("code"), skipped))
        pos = m.end()
    return blocks


def make_small_chase(src: Path, dst: Path) -> None:
    """A few CHASE DB1 images and their 1st-observer masks, downscaled (masks with nearest neighbour)."""
    dst.mkdir(parents=True)
    for stem in IMAGES:
        with Image.open(src / f"{stem}.jpg") as im:
            size = (im.width // SCALE, im.height // SCALE)
            im.convert("RGB").resize(size, Image.BICUBIC).save(dst / f"{stem}.jpg", quality=95)
        with Image.open(src / f"{stem}_1stHO.png") as m:
            m.convert("L").resize(size, Image.NEAREST).save(dst / f"{stem}_1stHO.png")


def tiny_train_config(path: Path) -> None:
    """examples/vessels/train_cpu.json with only the size knobs turned down."""
    config = json.loads((REPO_ROOT / CPU_CONFIG).read_text())
    config["epochs"] = 1
    config["input_size"] = {"width": 64, "height": 64}
    config["unetkit"]["model_options"]["base_channels"] = 4
    config["data_workers"]["train"] = 0
    path.write_text(json.dumps(config))


def build_script(text: str, *, config: Path, port: int) -> str:
    blocks = bash_blocks(text)
    run = [code for code, skipped in blocks if not skipped]
    skipped = [code for code, skip in blocks if skip]
    assert len(run) >= 8, f"expected the walkthrough's command blocks, found {len(run)}"
    # The setup block is skipped; the rest of the walkthrough needs only the activated venv (PATH below).
    assert any("bash run.sh setup" in code for code in skipped), "the setup block must be marked skip"
    gpu = [code for code in skipped if GPU_CONFIG in code]
    assert gpu and any(code.replace(GPU_CONFIG, CPU_CONFIG) in run for code in gpu), (
        "the GPU training block must be the CPU block with examples/train.json as the config"
    )
    script = "\n".join(run)
    for needle in (CPU_CONFIG, "8000", "../shared/data/chasedb1"):
        assert needle in script, f"{needle!r} no longer appears in the walkthrough"
    script = script.replace(CPU_CONFIG, str(config)).replace("8000", str(port))
    return "set -euo pipefail\nset -x\n" + script


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_walkthrough_runs_as_written(tmp_path, chasedb1_dir):
    assert shutil.which("curl"), "the walkthrough's serving step needs curl on PATH"
    repo = tmp_path / "unetkit"
    repo.mkdir()
    (repo / "examples").symlink_to(REPO_ROOT / "examples")
    make_small_chase(chasedb1_dir, tmp_path / "shared" / "data" / "chasedb1")
    config = tmp_path / "train_tiny.json"
    tiny_train_config(config)
    port = free_port()
    script = build_script(WALKTHROUGH.read_text(encoding="utf-8"), config=config, port=port)

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(CUDA_VISIBLE_DEVICES="", NO_COLOR="1", PYTHONWARNINGS="ignore")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server the walkthrough starts is in this group: cleaned up below
    )
    try:
        output, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"walkthrough timed out:\n{output[-6000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"walkthrough failed (rc {proc.returncode}):\n{output[-8000:]}"

    # What the commands produced, as the walkthrough describes it.
    assert len(list((repo / "vessels" / "ds0" / "img").iterdir())) == 2
    assert len(list((repo / "vessels_test" / "ds0" / "img").iterdir())) == 1
    meta = json.loads((repo / "inf_01" / "meta.json").read_text())
    assert {"vessel", "vessel_unet", "bg_unet"} <= {c["title"] for c in meta["classes"]}
    assert (repo / "vessels_train.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    tags = json.loads((repo / "vessels_train" / "meta.json").read_text())["tags"]
    assert {"train", "val"} <= {t["name"] for t in tags}
    assert (repo / "runs" / "vessels" / "checkpoints" / "best.json").is_file()
    metrics = json.loads((repo / "metrics.json").read_text())
    assert metrics["images"] == 1 and "vessel" in metrics["pooled"]["per_class"]
    assert (repo / "inf_01_render" / "ds0" / "overlays" / "Image_09L.jpg").is_file()
    assert (repo / "vessels.onnx").stat().st_size > 0
    ann = json.loads((repo / "ann.json").read_text())
    assert ann["size"] == {"height": 960 // SCALE, "width": 999 // SCALE}
    assert all(o["classTitle"].endswith("_model") for o in ann["objects"])
    pred = json.loads((repo / "pred.json").read_text())
    assert [c["title"] for c in pred["classes"]] == ["bg", "vessel"]
    with Image.open(repo / "Image_09L_mask.png") as mask:
        assert mask.size == (999 // SCALE, 960 // SCALE)
    print(f"walkthrough ran in {seconds:.1f} s")
