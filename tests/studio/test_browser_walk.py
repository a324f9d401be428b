"""The Supervisely tutorial done by clicking: the real ``unetkit studio`` in a subprocess, driven by Playwright
with Debian's headless Chromium (no browser download). Each step is screenshotted into the test's tmp folder.

``UNETKIT_WRITE_SCREENSHOT=1`` also writes the README picture ``docs/studio.png`` (the training task page).
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

import httpx
import numpy as np
import pytest
from PIL import Image

from browser import ARGS, CHROMIUM, require_browser
from unetkit.config_base import merge
from unetkit.demo.synthetic import draw_fundus
from unetkit.ports import free_port

README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "studio.png"
VIEWPORT = {"width": 1280, "height": 800}
IMAGES, SIZE = 6, 96
TASK_TIMEOUT_MS = 150_000
# the tutorial's training config, shrunk to seconds on a CPU: 2 epochs of a 2-level U-Net at 32×32
TINY = {"epochs": 2, "lr": 0.01, "val_every": 1, "batch_size": {"train": 16, "val": 16},
        "input_size": {"width": 32, "height": 32}, "data_workers": {"train": 0, "val": 0},
        "unetkit": {"model": "unet", "model_options": {"base_channels": 8, "depth": 2}, "seed": 0}}  # fmt: skip


def write_fundus_folders(raw: Path, n: int = IMAGES, size: int = SIZE) -> None:
    """``raw/images/fundus_i.png`` + ``raw/masks/fundus_i.png`` (0/255): the tutorial's 6 vessel images."""
    (raw / "images").mkdir(parents=True)
    (raw / "masks").mkdir()
    for i in range(n):
        image, mask = draw_fundus(i, size)
        Image.fromarray(image).save(raw / "images" / f"fundus_{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(raw / "masks" / f"fundus_{i}.png")


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """``(base_url, workspace)`` of a running ``python -m unetkit studio`` on generated image + mask folders."""
    require_browser()
    root = tmp_path_factory.mktemp("walk") / "ws"
    write_fundus_folders(root / "raw")
    port = free_port()
    log = (root.parent / "studio.log").open("w")
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "unetkit", "studio", str(root), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/workspace", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the studio did not start: " + (root.parent / "studio.log").read_text())
            time.sleep(0.2)
        yield base, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def page(studio):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(20_000)
            page.errors = []
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            yield page
        finally:
            browser.close()


def by(testid: str) -> str:
    return f'[data-testid="{testid}"]'


def shoot(page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def set_editor(page, testid: str, text: str) -> None:
    """Replace a CodeMirror editor's text (as a paste: no auto-closed brackets)."""
    page.locator(f"{by(testid)} .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def fill(page, testid: str, value) -> None:
    page.locator(f"input{by(testid)}").fill(str(value))  # Quasar puts the attribute on the <input>


def choose(page, testid: str, option: str) -> None:
    """Pick ``option`` (its label starts with it) in a Quasar select."""
    page.locator(by(testid)).click()
    page.get_by_role("option").filter(has_text=option).first.click()


def wait_done(page, timeout: int = TASK_TIMEOUT_MS) -> None:
    """Wait until the task page's state badge says a task finished; fail with the log unless it is done."""
    page.wait_for_selector(f'{by("task-state")}:is([data-state=done], [data-state=failed], [data-state=stopped])',
                           timeout=timeout)  # fmt: skip
    state = page.get_attribute(by("task-state"), "data-state")
    assert state == "done", page.inner_text(by("task-log"))


def loaded(page, selector: str) -> bool:
    """An ``<img>`` has loaded a picture."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector,
    )
    return True


def test_tutorial_walk_by_clicking(studio, page, tmp_path):
    base, root = studio
    # 1. import the image + mask folders as the project `vessels`
    page.goto(f"{base}/")
    fill(page, "import-images", "raw/images")
    fill(page, "import-out", "vessels")
    page.click(by("import-submit"))  # no mask folder: the API's answer is one notification
    page.wait_for_selector(".q-notification >> text=give both folders")
    fill(page, "import-masks", "raw/masks")
    page.click(by("import-submit"))
    page.click(by("open-project"), timeout=60_000)
    page.wait_for_selector(f"{by('class-stats')} >> text=vessel")
    assert page.locator(by("item-thumb")).count() == IMAGES
    shoot(page, tmp_path, "01-project")
    # 2. an item: the picture with the class layer above it; toggle, opacity, wheel zoom
    page.locator(by("item-thumb")).first.click()
    assert loaded(page, by("base")) and loaded(page, by("layer-vessel"))
    page.click(f"{by('toggle-vessel')}")
    page.wait_for_selector(by("layer-vessel"), state="hidden")
    page.click(f"{by('toggle-vessel')}")
    box = page.locator(by("viewer")).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    page.wait_for_function("() => parseFloat(document.querySelector('[data-panzoom]').dataset.zoom || 1) > 1")
    shoot(page, tmp_path, "02-item")

    # 3. DTL: pick the tutorial's template, drawn; a deliberate error shows its JSON path; fixed; Start
    page.click(by("nav-dtl"))
    choose(page, "dtl-template", "vessels/select_vessels:")  # another template (its project is not here)
    page.wait_for_selector(f"{by('dtl-status')}[data-ok=false]")
    choose(page, "dtl-template", "Tutorial")
    page.wait_for_selector(f"{by('dtl-status')}[data-ok=true]")
    page.wait_for_function(
        "() => document.querySelector('input[data-testid=dtl-out]')?.value === 'vessels_train'"
    )
    page.wait_for_selector(f"{by('dtl-graph')} svg")
    graph = httpx.get(f"{base}/api/dtl/templates").json()[0]["graph"]  # (CodeMirror shows only some lines)
    graph = json.loads(graph) if isinstance(graph, str) else graph
    broken = json.loads(json.dumps(graph))
    broken[1]["action"] = "flipp"
    set_editor(page, "dtl-editor", json.dumps(broken, indent=2))
    page.wait_for_selector(f"{by('dtl-status')}[data-ok=false]")
    assert page.inner_text(by("dtl-error-path")) == "$[1].action"
    shoot(page, tmp_path, "03-dtl-error")
    set_editor(page, "dtl-editor", json.dumps(graph, indent=2))
    page.wait_for_selector(f"{by('dtl-status')}[data-ok=true]")
    shoot(page, tmp_path, "04-dtl")
    page.click(by("dtl-start"))
    page.click(by("open-project"), timeout=TASK_TIMEOUT_MS)
    page.wait_for_selector(f"{by('class-stats')} >> text=vessel")

    # 4. Train on vessels_train: tiny config through the JSON tab, epochs through the form; follow the task
    page.click(by("train-on-project"))
    page.wait_for_function("() => document.querySelector('input[data-testid=cfg-epochs]')?.value > 0")
    choose(page, "train-model", re.compile(r"^\s*unet\b"))
    defaults = httpx.get(f"{base}/api/train/defaults", params={"project": "vessels_train"}).json()
    page.click(by("tab-json"))
    set_editor(page, "train-json", json.dumps(merge(defaults, {**TINY, "epochs": 1}), indent=2))
    page.click(by("tab-form"))
    fill(page, "cfg-epochs", TINY["epochs"])
    page.wait_for_selector(f"{by('train-status')}[data-ok=true]")
    fill(page, "train-run", "vessels_unet")
    shoot(page, tmp_path, "05-train")
    page.click(by("train-submit"))
    page.wait_for_url("**/tasks/*")
    wait_done(page)
    assert f"epoch 2.00/{TINY['epochs']}" in page.inner_text(by("task-progress"))
    assert "checkpoint" in page.inner_text(by("task-log")).lower()
    page.wait_for_selector(f"{by('chart-loss')} canvas")
    assert loaded(page, by("preview-image"))
    shoot(page, tmp_path, "06-train-task")
    if os.environ.get("UNETKIT_WRITE_SCREENSHOT") == "1":
        write_readme_screenshot(page)

    # 5. Test the run on `vessels` (the tutorial's inf_01) keeping probabilities, then its Evaluation page
    page.click(f"{by('task-outputs')} >> text=test it")
    choose(page, "test-project", "vessels")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=test-config] .cm-content')?.innerText.length > 5"
    )
    fill(page, "test-out", "inf_01")
    page.click(by("test-probabilities"))
    page.click(by("test-submit"))
    page.click(by("open-evaluation"), timeout=TASK_TIMEOUT_MS)
    page.wait_for_selector('[data-testid^="metric-"]')
    rows = page.locator(f"{by('per-image-table')} tbody tr")
    assert rows.count() == IMAGES
    page.locator(f"{by('per-image-table')} th", has_text="dice").first.click()
    page.wait_for_selector(f"{by('per-image-table')} th.sorted")
    dice = column(page, "dice")
    assert dice == sorted(dice) and dice[-1] > 0
    shoot(page, tmp_path, "07-evaluation")
    # the slider (probabilities were saved): a click (the value under the pointer, about 0.5) and two steps up
    # with the keyboard; the metrics follow to the value the slider shows
    page.click(by("threshold"))
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        """() => {
            const v = parseFloat(document.querySelector('[data-testid="threshold"]').getAttribute('aria-valuenow'));
            const t = document.querySelector('[data-testid="threshold-value"]').innerText;
            return v > 0.5 && t === `metrics at threshold ${v}`;
        }""",
        timeout=20_000,
    )
    rows.first.click()
    assert loaded(page, by("errors-overlay"))
    for side in ("side-ground-truth", "side-prediction"):  # the prediction beside the ground truth
        assert loaded(page, f"{by(side)} {by('base')}")
        assert loaded(page, f"{by(side)} img[data-testid^='layer-']")
    page.wait_for_timeout(300)  # the dialog's fade-in
    shoot(page, tmp_path, "08-errors")

    # 6. Models: the run's card; Export ONNX (a task); Serve (a task with its URL), then Stop it on its task page
    page.keyboard.press("Escape")
    page.click(by("nav-models"))
    page.click(f"{by('run-runs/vessels_unet')} a")
    page.click(by("model-export"))
    page.wait_for_selector(
        f"{by('model-watch')} {by('task-state')}[data-state=done]", timeout=TASK_TIMEOUT_MS
    )
    assert (root / "runs" / "vessels_unet" / "model.onnx").is_file()
    page.click(by("model-serve"))
    url = page.inner_text(by("serve-url"))
    wait_ready(url)
    shoot(page, tmp_path, "09-model")
    page.click(f"{by('model-watch')} {by('task-link')}")
    page.click(by("task-stop"))
    page.wait_for_selector(f"{by('task-state')}[data-state=stopped]", timeout=30_000)
    assert not page.errors, page.errors


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """The model service at ``url`` answers /readyz with 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url.rstrip('/')}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the model service at {url} did not become ready"
        time.sleep(0.3)


def column(page, label: str) -> list[float]:
    """The values of the per-image table's column ``label``, in the order shown."""
    return page.evaluate(
        """label => {
            const t = document.querySelector('[data-testid=per-image-table]');
            const text = th => th.innerText.replace('arrow_upward', '').trim();  // (the sort icon's ligature)
            const i = [...t.querySelectorAll('thead th')].findIndex(th => text(th) === label);
            return [...t.querySelectorAll('tbody tr')].map(tr => parseFloat(tr.children[i].innerText));
        }""",
        label,
    )


def write_readme_screenshot(page) -> None:
    """``docs/studio.png``: the page as shown (≤ 1280×800), palette-quantised and optimised."""
    raw = README_SHOT.with_suffix(".raw.png")
    page.screenshot(path=str(raw))
    with Image.open(raw) as shot:
        shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(
            README_SHOT, optimize=True
        )
    raw.unlink()


def test_multiclass_project_and_confusion_matrix(studio, page, tmp_path, sly_samples_dir):
    """Lemons (several classes): the project browser, class statistics, an item's layers and the confusion
    matrix of an evaluation (the project scored against itself with ``unetkit evaluate --json``)."""
    base, root = studio
    shutil.copytree(sly_samples_dir / "lemons_annotated", root / "lemons")
    meta = json.loads((root / "lemons" / "meta.json").read_text())
    titles = [c["title"] for c in meta["classes"]]
    assert len(titles) >= 2
    (root / ".studio" / "evaluations").mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "unetkit", "evaluate", "--gt", "lemons", "--pred", "lemons",
                    "--json", ".studio/evaluations/lemons_self.json"], cwd=root, check=True)  # fmt: skip
    page.goto(f"{base}/")
    page.click(by("project-lemons"))
    for title in titles:
        page.wait_for_selector(f"{by('class-stats')} >> text={title}")
    shoot(page, tmp_path, "01-lemons")
    page.locator(by("item-thumb")).first.click()
    assert loaded(page, by("base"))
    for title in titles:
        assert loaded(page, by(f"layer-{title}"))
    shoot(page, tmp_path, "02-lemons-item")
    page.goto(f"{base}/evaluation?name=lemons_self")
    page.wait_for_selector(f"{by('confusion-chart')} canvas")
    page.locator(by("confusion")).scroll_into_view_if_needed()
    shoot(page, tmp_path, "03-lemons-confusion")
    assert not page.errors, page.errors
