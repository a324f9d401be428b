// unetkit web page: upload an image, show the predicted mask over it. Plain JS, no build step.
"use strict";

const BACKGROUND_TITLES = new Set(["bg", "background", "__bg__", "_background_"]);

const els = {
  input: document.getElementById("file-input"),
  drop: document.getElementById("drop-zone"),
  fileName: document.getElementById("file-name"),
  opacity: document.getElementById("opacity"),
  opacityValue: document.getElementById("opacity-value"),
  status: document.getElementById("status"),
  timing: document.getElementById("timing"),
  download: document.getElementById("download"),
  legend: document.getElementById("legend"),
  stage: document.getElementById("stage"),
  image: document.getElementById("image-canvas"),
  overlay: document.getElementById("overlay"),
  modelInfo: document.getElementById("model-info"),
};

// maskPixels: the class-index mask (RGBA ImageData); classMasks: multi-label models, one mask per class index
const state = { classes: [], hidden: new Set(), maskPixels: null, classMasks: null, counts: {}, pixels: 0, busy: false };

function setStatus(text, kind) {
  els.status.textContent = text;
  els.status.dataset.state = kind;
}

function hexToRgb(hex) {
  const v = parseInt(hex.replace("#", ""), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function renderLegend() {
  els.legend.replaceChildren();
  const total = state.pixels; // a share of the image (multi-label classes may overlap)
  for (const cls of state.classes) {
    const li = document.createElement("li");
    li.dataset.title = cls.title;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !state.hidden.has(cls.index);
    box.title = "show this class in the overlay";
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(cls.index);
      else state.hidden.add(cls.index);
      drawOverlay();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = cls.color;
    const name = document.createElement("span");
    name.textContent = cls.title;
    const share = document.createElement("span");
    share.className = "share";
    const n = state.counts[cls.title];
    share.textContent = total && n !== undefined ? `${((100 * n) / total).toFixed(1)}%` : "";
    li.append(box, swatch, name, share);
    els.legend.append(li);
  }
}

function setClasses(classes) {
  state.classes = classes;
  state.hidden = new Set(classes.filter((c) => BACKGROUND_TITLES.has(c.title.toLowerCase())).map((c) => c.index));
  renderLegend();
}

async function loadModelInfo() {
  try {
    const res = await fetch("v1/model");
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const info = await res.json();
    const size = info.input_size ? `${info.input_size.width}×${info.input_size.height}` : "?";
    els.modelInfo.textContent = `${info.architecture} · input ${size} · ${info.classes.length} classes · ${info.backend}`;
    setClasses(info.classes);
  } catch (err) {
    els.modelInfo.textContent = `model information unavailable (${err.message})`;
  }
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = src;
  });
}

async function readMask(url, width, height) {
  const scratch = document.createElement("canvas");
  scratch.width = width;
  scratch.height = height;
  const sctx = scratch.getContext("2d");
  sctx.drawImage(await loadImage(url), 0, 0);
  return sctx.getImageData(0, 0, width, height);
}

// multi-label: every visible class present at a pixel, in the mean colour of those classes
function paintClassMasks(dst) {
  const visible = state.classes.filter((c) => state.classMasks.has(c.index) && !state.hidden.has(c.index));
  const colors = visible.map((c) => hexToRgb(c.color));
  const masks = visible.map((c) => state.classMasks.get(c.index).data);
  let shown = 0;
  for (let i = 0; i < dst.length; i += 4) {
    let n = 0;
    let r = 0;
    let g = 0;
    let b = 0;
    for (let k = 0; k < masks.length; k++) {
      if (masks[k][i] < 128) continue;
      [r, g, b] = [r + colors[k][0], g + colors[k][1], b + colors[k][2]];
      n += 1;
    }
    if (!n) continue;
    [dst[i], dst[i + 1], dst[i + 2], dst[i + 3]] = [r / n, g / n, b / n, 255];
    shown += 1;
  }
  return shown;
}

function drawOverlay() {
  if (state.classMasks) {
    const ctx = els.overlay.getContext("2d");
    const out = ctx.createImageData(els.overlay.width, els.overlay.height);
    els.stage.dataset.overlayPixels = String(paintClassMasks(out.data));
    ctx.putImageData(out, 0, 0);
    return;
  }
  const mask = state.maskPixels;
  if (!mask) return;
  const ctx = els.overlay.getContext("2d");
  const out = ctx.createImageData(mask.width, mask.height);
  const colorToClass = new Map(state.classes.map((c) => [hexToRgb(c.color).join(","), c.index]));
  const src = mask.data;
  const dst = out.data;
  let shown = 0;
  for (let i = 0; i < src.length; i += 4) {
    const key = `${src[i]},${src[i + 1]},${src[i + 2]}`;
    const idx = colorToClass.get(key);
    if (idx === undefined || state.hidden.has(idx)) continue;
    dst[i] = src[i];
    dst[i + 1] = src[i + 1];
    dst[i + 2] = src[i + 2];
    dst[i + 3] = 255;
    shown += 1;
  }
  ctx.putImageData(out, 0, 0);
  els.stage.dataset.overlayPixels = String(shown);
}

async function showResult(file, result, roundTripMs) {
  const { width, height } = result;
  for (const canvas of [els.image, els.overlay]) {
    canvas.width = width;
    canvas.height = height;
  }
  // small images are shown enlarged (up to the viewer's width), large ones shrunk to fit
  const room = Math.max(els.stage.parentElement.clientWidth - 32, 64);
  els.image.style.width = `${Math.min(room, Math.max(width, 512))}px`;
  const imageCtx = els.image.getContext("2d");
  const url = URL.createObjectURL(file);
  try {
    // 16-bit, float and many-channel images: the service's 8-bit preview (percentile window, first 3 channels)
    const shown = result.preview_png ? `data:image/png;base64,${result.preview_png}` : url;
    imageCtx.drawImage(await loadImage(shown), 0, 0, width, height);
  } catch (_err) {
    imageCtx.fillStyle = "#808080"; // the browser cannot show it and no preview came back
    imageCtx.fillRect(0, 0, width, height);
  } finally {
    URL.revokeObjectURL(url);
  }
  let maskUrl = `data:image/png;base64,${result.mask_png}`;
  state.maskPixels = null;
  state.classMasks = null;
  if (result.multilabel) {
    // overlapping classes: one mask per class; the download is the overlay of all classes
    const masks = new Map();
    for (const cls of result.classes) {
      masks.set(cls.index, await readMask(`data:image/png;base64,${result.masks_png[cls.title]}`, width, height));
    }
    state.classMasks = masks;
  } else {
    state.maskPixels = await readMask(maskUrl, width, height);
  }
  state.counts = result.class_pixels || {};
  state.pixels = width * height;
  setClasses(result.classes);
  drawOverlay();

  const stem = file.name.replace(/\.[^.]+$/, "") || "image";
  if (result.multilabel) maskUrl = els.overlay.toDataURL("image/png");
  els.download.href = maskUrl;
  els.download.download = result.multilabel ? `${stem}_masks.png` : `${stem}_mask.png`;
  els.download.classList.remove("disabled");
  els.download.removeAttribute("aria-disabled");
  els.timing.textContent = `model ${result.time_ms.toFixed(0)} ms · round trip ${roundTripMs.toFixed(0)} ms · ${width}×${height}`;
  els.stage.dataset.state = "ready";
  setStatus(`Segmented ${file.name}.`, "done");
}

async function predict(file) {
  if (!file || state.busy) return;
  state.busy = true;
  els.fileName.textContent = file.name;
  els.stage.dataset.state = els.stage.dataset.state === "empty" ? "empty" : "stale";
  setStatus("Segmenting…", "busy");
  const form = new FormData();
  form.append("image", file, file.name);
  const started = performance.now();
  try {
    const browserShows = /\.(jpe?g|jfif|gif|webp|bmp)$/i.test(file.name);
    const query = browserShows ? "format=mask" : "format=mask&preview=true"; // PNG may be 16-bit
    const res = await fetch(`v1/predict?${query}`, { method: "POST", body: form });
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}`, detail: "no JSON body" }));
    if (!res.ok) throw new Error(`${body.error}: ${body.detail}`);
    await showResult(file, body, performance.now() - started);
  } catch (err) {
    setStatus(`Failed: ${err.message}`, "error");
  } finally {
    state.busy = false;
  }
}

els.input.addEventListener("change", () => predict(els.input.files[0]));
els.opacity.addEventListener("input", () => {
  els.overlay.style.opacity = String(els.opacity.value / 100);
  els.opacityValue.textContent = `${els.opacity.value}%`;
});
for (const name of ["dragenter", "dragover"]) {
  els.drop.addEventListener(name, (ev) => {
    ev.preventDefault();
    els.drop.classList.add("dragging");
  });
}
for (const name of ["dragleave", "drop"]) {
  els.drop.addEventListener(name, () => els.drop.classList.remove("dragging"));
}
els.drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  const file = ev.dataTransfer.files[0];
  if (file) predict(file);
});
els.drop.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" || ev.key === " ") els.input.click();
});

loadModelInfo();
