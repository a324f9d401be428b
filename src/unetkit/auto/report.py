"""``RUN/report.html``: fingerprint, plan, curves per fold, out-of-fold metrics, every choice with its gain,
overlays (true positives, false positives and false negatives in distinct colours) and the ROC curve. One
self-contained file: pictures are inline PNGs."""

from __future__ import annotations

import base64
import html
import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from unetkit import atomic  # noqa: E402
from unetkit.metrics import ScoreHistogram  # noqa: E402
from unetkit.project import display_rgb, read_pixels  # noqa: E402

TP, FP, FN = (0, 200, 0), (255, 0, 255), (0, 160, 255)  # green, magenta, azure
MAX_OVERLAYS = 6


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _curves(histories: list[list[dict]]) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    for i, records in enumerate(histories):
        train = [(r["iteration"], r["metrics"]["loss"]) for r in records if r.get("type") == "train"]
        val = [(r["iteration"], r["metrics"].get("dice", np.nan)) for r in records if r.get("type") == "val"]
        if train:
            a.plot(*zip(*train), label=f"fold {i}", lw=1)
        if val:
            b.plot(*zip(*val), marker="o", label=f"fold {i}")
    a.set(title="training loss", xlabel="iteration")
    b.set(title="validation Dice", xlabel="iteration")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    return _png(fig)


def _foreground(o, choices, neutral: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ground truth, prediction, counted) foreground masks of one out-of-fold image under the choices."""
    from unetkit.auto.select import cleanup_rules
    from unetkit.inference.postprocess import clean_mask, decide

    probs = o.probs_tta if choices.tta and o.probs_tta is not None else o.probs
    if not o.multilabel:
        keep = o.gt != neutral
        pred = clean_mask(
            decide(probs, choices.threshold), cleanup_rules(choices.min_sizes, choices.keep_largest)
        )
        return o.gt > 0, pred > 0, keep
    k = probs.shape[2]
    ts = choices.threshold if isinstance(choices.threshold, dict) else {}
    pred = np.zeros(o.gt.shape, bool)
    for c in range(k):
        pred |= probs[:, :, c] >= ts.get(c, 0.5)
    return (o.gt & ((1 << k) - 1)) > 0, pred, ((o.gt >> k) & 1) == 0


def _overlay(image: np.ndarray, fg_gt: np.ndarray, fg_pr: np.ndarray, keep: np.ndarray) -> np.ndarray:
    out = (display_rgb(image).astype(np.float32) * 0.6).astype(np.uint8)
    fg_gt, fg_pr = fg_gt & keep, fg_pr & keep
    out[fg_gt & fg_pr] = TP
    out[~fg_gt & fg_pr] = FP
    out[fg_gt & ~fg_pr] = FN
    return out


def _roc(oof, neutral: int) -> tuple[str, float] | None:
    if oof[0].probs.shape[2] != 2 or oof[0].multilabel:
        return None
    hist = ScoreHistogram()
    for o in oof:
        keep = o.gt != neutral
        hist.update(o.probs[:, :, 1][keep].astype(np.float32), o.gt[keep] == 1)
    c = hist.threshold_counts()
    tpr = c["tp"] / max(int(hist.pos.sum()), 1)
    fpr = c["fp"] / max(int(hist.neg.sum()), 1)
    pick = np.unique(np.linspace(0, len(fpr) - 1, 4000).astype(int))
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot(fpr[pick], tpr[pick])
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="out-of-fold ROC")
    return _png(fig), hist.roc_auc()


def _table(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _time_table(sessions: list[float], budget_s: float) -> str:
    """Wall-clock time per session: before a kill, after it (a resumed run), and in all against the budget."""
    if len(sessions) == 1:
        rows = [("wall-clock time", f"{sessions[0]:.1f} s")]
    else:
        rows = [(f"session {i + 1} ({'before the kill' if i < len(sessions) - 1 else 'after the kill'})",
                 f"{s:.1f} s") for i, s in enumerate(sessions)]  # fmt: skip
        rows[0] = (f"session 1 (before {'a' if len(sessions) > 2 else 'the'} kill)", f"{sessions[0]:.1f} s")
    rows.append(("in all / budget", f"{sum(sessions):.1f} s / {budget_s:.0f} s"))
    return _table(rows, ("session", "wall-clock"))


def write_report(run, plan, choices, oof, histories, splits, project, classes, *, sessions=None) -> None:
    """Write ``run/report.html`` (atomically). ``sessions``: the wall-clock seconds of each session of the run
    (more than one when it was resumed after a kill)."""
    neutral = classes.neutral_index
    fp = plan.fingerprint
    parts = [f"<h1>unetkit auto — {html.escape(str(project.path.name))}</h1>"]
    parts.append("<h2>Fingerprint</h2>" + _table(
        [("images", fp["images"]), ("channels × type", f'{fp["channels"]} × {fp["pixel_type"]}'),
         ("median size", f'{fp["size"]["width"]["median"]:.0f} × {fp["size"]["height"]["median"]:.0f}'),
         ("overlapping classes", fp["overlapping_classes"]), ("neutral fraction", f'{fp["neutral_fraction"]:.4f}')]
        + [(f"class {t}", f'{c["pixel_fraction"]:.4f} of pixels, in {c["present_in"]:.0%} of images, thickness '
            f'{"-" if c["thickness_px"] is None else round(c["thickness_px"], 1)} px') for t, c in fp["classes"].items()],
        ("measure", "value")))  # fmt: skip
    plan_rows = [(k, json.dumps(v)) for k, v in plan.model_dump(mode="json").items() if k != "fingerprint"]
    parts.append("<h2>Plan</h2>" + _table(plan_rows, ("setting", "value")))
    if sessions:
        parts.append("<h2>Time</h2>" + _time_table(sessions, plan.budget_s))
    parts.append("<h2>Training curves per fold</h2>" + _curves(histories))
    parts.append(
        "<h2>Choices on out-of-fold predictions</h2>"
        + _table(
            [(s["option"], s["value"], f'{s["dice_before"]:.4f}', f'{s["dice_after"]:.4f}', f'{s["gain"]:+.4f}',
              "yes" if s["taken"] else "no") for s in choices.steps],
            ("option", "value", "Dice before", "Dice after", "gain", "taken"),
        )
        + f"<p>out-of-fold pooled Dice with the choices: <b>{choices.dice:.4f}</b> over {len(oof)} images; "
        f"final model: {'ensemble of ' + str(len(splits)) + ' folds' if len(splits) > 1 else 'the held-out fold'}</p>"
    )  # fmt: skip
    roc = _roc(oof, neutral)
    if roc is not None:
        parts.append(f"<h2>ROC</h2>{roc[0]}<p>out-of-fold ROC-AUC {roc[1]:.4f}</p>")
    items = {f"{it.dataset}/{it.name}": it for it in project.items()}
    shots = []
    for o in oof[:MAX_OVERLAYS]:
        picture = _overlay(read_pixels(items[o.name].image_path), *_foreground(o, choices, neutral))
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(picture)
        ax.set_axis_off()
        ax.set_title(o.name, fontsize=8)
        shots.append(_png(fig))
    parts.append("<h2>Out-of-fold overlays</h2><p>green: true positive, magenta: false positive, azure: false "
                 "negative</p>" + "".join(shots))  # fmt: skip
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}img{margin:4px}"  # noqa: E501
    page = f"<!doctype html><meta charset=utf-8><title>unetkit auto</title><style>{style}</style>{''.join(parts)}"
    atomic.write_bytes(run / "report.html", page.encode("utf-8"))
