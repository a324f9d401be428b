"""The web page in a real browser: Debian's headless Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import httpx
import pytest
from PIL import Image

from browser import ARGS, CHROMIUM, require_browser

from .helpers import sample_image


@pytest.fixture(scope="module")
def page():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 720})
            yield context.new_page()
        finally:
            browser.close()


def test_upload_shows_overlay_legend_timing_and_download(server, page, tmp_path):
    image_path = tmp_path / "disc.png"
    Image.fromarray(sample_image(42, 192, 256)).save(image_path)
    with image_path.open("rb") as fh:
        expected = httpx.post(f"{server}/v1/predict", files={"image": ("disc.png", fh, "image/png")}).json()
    foreground = sum(n for title, n in expected["class_pixels"].items() if title != "bg")
    assert foreground > 0

    page.goto(f"{server}/")
    page.wait_for_selector("#legend li")  # the class legend comes from GET /v1/model
    assert "unet" in page.inner_text("#model-info")
    page.set_input_files("#file-input", str(image_path))
    page.wait_for_selector('#stage[data-state="ready"]', timeout=30_000)

    # the overlay canvas really holds the predicted mask (background hidden by default)
    shown = page.evaluate(
        """() => {
            const c = document.getElementById('overlay');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return {n, w: c.width, h: c.height};
        }"""
    )
    assert (shown["w"], shown["h"]) == (256, 192)
    assert shown["n"] == foreground
    assert page.get_attribute("#stage", "data-overlay-pixels") == str(foreground)

    legend = page.locator("#legend li")
    assert legend.count() == 3
    assert [legend.nth(i).get_attribute("data-title") for i in range(3)] == ["bg", "disc", "bar"]
    assert "%" in legend.nth(1).inner_text()
    assert "ms" in page.inner_text("#timing")
    assert "Segmented disc.png" in page.inner_text("#status")

    href = page.get_attribute("#download", "href")
    assert href.startswith("data:image/png;base64,") and href.endswith(expected["mask_png"])
    assert page.get_attribute("#download", "download") == "disc_mask.png"

    page.eval_on_selector("#opacity", "el => { el.value = 80; el.dispatchEvent(new Event('input')); }")
    assert page.eval_on_selector("#overlay", "el => el.style.opacity") == "0.8"
    assert page.inner_text("#opacity-value") == "80%"

    # showing the background class too fills the whole overlay
    legend.nth(0).locator("input").check()
    assert page.get_attribute("#stage", "data-overlay-pixels") == str(256 * 192)
    legend.nth(0).locator("input").uncheck()

    shot = Path(os.environ.get("UNETKIT_SCREENSHOT_DIR", tmp_path)) / "serving_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_bad_file_shows_the_error(server, page, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not an image")
    page.goto(f"{server}/")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector('#status[data-state="error"]', timeout=30_000)
    assert "unsupported_image" in page.inner_text("#status")


def test_dropping_an_image_segments_it(server, page):
    page.goto(f"{server}/")
    page.wait_for_selector("#legend li")
    png = Image.fromarray(sample_image(43, 96, 128))
    buf = io.BytesIO()
    png.save(buf, format="PNG")
    page.evaluate(
        """(bytes) => {
            const file = new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'});
            const dt = new DataTransfer();
            dt.items.add(file);
            const zone = document.getElementById('drop-zone');
            zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        list(buf.getvalue()),
    )
    page.wait_for_selector('#stage[data-state="ready"]', timeout=30_000)
    assert "Segmented dropped.png" in page.inner_text("#status")
    assert page.get_attribute("#download", "download") == "dropped_mask.png"
    assert int(page.get_attribute("#stage", "data-overlay-pixels")) > 0


def test_install_script_is_a_quick_no_op_when_chromium_is_present():
    import subprocess
    import time

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed here; the script would install it")
    script = Path(__file__).resolve().parents[2] / "scripts" / "install_browser.sh"
    started = time.monotonic()
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 5
