"""`unetkit demo`: the vessels tutorial end to end on a built-in synthetic project, with an HTML report.

Steps (each uses the public library API, exactly what the CLI commands run):
1. draw a `vessels` project (6 retina-like images) and a held-out `vessels_test` project;
2. run the tutorial's DTL graph (examples/dtl/vessels_train.json, packaged as demo/vessels_train.json) → 264 items;
3. train with the tutorial's config adapted to a CPU (see DEMO_TRAIN_CONFIG);
4. apply the best checkpoint to the held-out images with the docs' inference config (full_image, `_unet`);
5. evaluate against the held-out ground truth and write `report.html`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from unetkit import atomic
from unetkit.demo.synthetic import draw_fundus
from unetkit.project import Annotation, Bitmap, Label, ObjClass, Project, ProjectMeta, ProjectWriter
from unetkit.project.output_folder import check_output_folder

VESSEL = ObjClass(title="vessel", shape="bitmap", color="#FF3B30", geometry_config={}, extra={})
IMAGE_SIZE = 192
N_TRAIN_IMAGES = 6  # the tutorial's "6 images"
N_TEST_IMAGES = 4

# The tutorial's training config (seed 002) adapted to a 2-core CPU: a 16-channel bilinear U-Net instead of the
# 61 M-parameter UNet V2 (about 30x fewer MACs, so a few epochs fit in minutes), input 160×160 instead of 256×256
# (the DTL crops are 70–90 % of a 192 px image, i.e. 134–173 px: no detail is lost), 6 epochs instead of 15,
# gpu_devices kept (CPU fallback with a warning). About a minute of training on an idle 2-core CPU.
DEMO_TRAIN_CONFIG: dict = {
    "lr": 0.003,
    "epochs": 6,
    "val_every": 1,
    "batch_size": {"val": 8, "train": 8},
    "input_size": {"width": 160, "height": 160},
    "gpu_devices": [0],
    "data_workers": {"val": 0, "train": 0},
    "dataset_tags": {"val": "val", "train": "train"},
    "special_classes": {"neutral": "neutral", "background": "bg"},
    "weights_init_type": "transfer_learning",
    "unetkit": {
        "model": "unet",
        "model_options": {"base_channels": 16, "upsample": "bilinear"},
        "seed": 0,
    },
}

# The docs' inference config (seeds 000/002), verbatim.
DOCS_INFERENCE_CONFIG: dict = {
    "model": {"gpu_device": 0},
    "mode": {"name": "full_image", "model_classes": {"save_classes": "__all__", "add_suffix": "_unet"}},
}


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    dice: float
    metrics: dict
    seconds: dict[str, float] = field(default_factory=dict)


def vessels_graph() -> list:
    """The tutorial's DTL graph (identical to examples/dtl/vessels_train.json)."""
    text = resources.files("unetkit.demo").joinpath("vessels_train.json").read_text(encoding="utf-8")
    return json.loads(text)


def write_sample_project(path: Path, name_prefix: str, seeds: list[int], size: int = IMAGE_SIZE) -> Project:
    """Write a project of synthetic fundus images with one `vessel` bitmap each (dataset `ds0`)."""
    meta = ProjectMeta(classes=[VESSEL], tag_metas=[])
    writer = ProjectWriter(path, meta)
    for i, seed in enumerate(seeds, 1):
        image, mask = draw_fundus(seed, size)
        labels = []
        bitmap = Bitmap.from_full_mask(mask)
        if bitmap is not None:
            labels.append(Label(class_title=VESSEL.title, geometry=bitmap, tags=[]))
        ann = Annotation(height=size, width=size, labels=labels, tags=[])
        writer.add_item("ds0", f"{name_prefix}_{i:02d}.png", image, ann)
    writer.write_meta()
    return Project.read(path)


def run_demo(
    out_dir: str | Path, *, seed: int = 0, epochs: int | None = None, progress: bool = True
) -> DemoResult:
    """Run the whole demo into ``out_dir`` (must be new or empty) and return the held-out metrics. A demo that
    fails leaves no new folder behind."""
    out = check_output_folder(out_dir)
    created = not out.exists()
    try:
        return _run_demo(out, seed, epochs, progress)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _run_demo(out: Path, seed: int, epochs: int | None, progress: bool) -> DemoResult:
    from unetkit.dtl.executor import load_inputs, run_graph
    from unetkit.dtl.graph import build_graph
    from unetkit.inference import Predictor, parse_config
    from unetkit.inference.batch import infer_project
    from unetkit.inference.evaluate import evaluate_projects
    from unetkit.training import train

    atomic.make_folder(out)
    times: dict[str, float] = {}
    say = print if progress else (lambda *a, **k: None)

    t = time.perf_counter()
    write_sample_project(out / "vessels", "vessels", [seed * 1000 + i for i in range(N_TRAIN_IMAGES)])
    write_sample_project(out / "vessels_test", "test", [seed * 1000 + 500 + i for i in range(N_TEST_IMAGES)])
    times["generate"] = time.perf_counter() - t
    say(f"[1/5] sample projects: {out / 'vessels'} ({N_TRAIN_IMAGES} images), {out / 'vessels_test'}")

    t = time.perf_counter()
    projects = load_inputs([out / "vessels"])
    graph = build_graph(vessels_graph(), {p.name: p.meta for p in projects})
    dtl_report = run_graph(graph, projects, out / "vessels_train", seed=seed, workers=1, progress=progress)
    times["dtl"] = time.perf_counter() - t
    say(f"[2/5] DTL vessels graph: {dtl_report.written} items → {out / 'vessels_train'}")

    config = json.loads(json.dumps(DEMO_TRAIN_CONFIG))
    config["unetkit"]["seed"] = seed
    if epochs is not None:
        config["epochs"] = epochs
    t = time.perf_counter()
    run = train(out / "vessels_train", config, out / "run", progress=progress)
    times["train"] = time.perf_counter() - t
    checkpoint = Path(run.best_checkpoint)
    say(f"[3/5] trained; best checkpoint {checkpoint}")

    t = time.perf_counter()
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu")
    inference_config = parse_config(json.loads(json.dumps(DOCS_INFERENCE_CONFIG)))
    infer_project(
        predictor, out / "vessels_test", out / "inference", inference_config, workers=1, progress=progress
    )
    times["infer"] = time.perf_counter() - t
    say(f"[4/5] inference with the docs' config → {out / 'inference'}")

    metrics = evaluate_projects(out / "vessels_test", out / "inference")
    atomic.write_json(out / "metrics.json", metrics, indent=2)
    dice = float(metrics["pooled"]["per_class"]["vessel"]["dice"])
    report = _write_report(out, run.run_dir, metrics, times)
    say(f"[5/5] held-out vessel Dice {dice:.3f}; report: {report}")
    return DemoResult(out_dir=out, report=report, dice=dice, metrics=metrics, seconds=times)


def _write_report(out: Path, run_dir: Path, metrics: dict, times: dict[str, float]) -> Path:
    from unetkit.demo.report import write_report
    from unetkit.project import render_overlay

    gt = Project.read(out / "vessels_test")
    pred = Project.read(out / "inference")
    pred_items = {(i.dataset, i.name): i for i in pred.items()}
    panels = []
    for item in gt.items():
        image = item.read_image()
        gt_ann = item.read_annotation(gt.meta)
        p = pred_items[(item.dataset, item.name)]
        pred_ann = p.read_annotation(pred.meta)
        pred_ann = pred_ann.clone(
            labels=[lb for lb in pred_ann.labels if not lb.class_title.startswith("bg")]
        )
        panels.append(
            (
                item.name,
                [
                    ("image", image),
                    ("ground truth", render_overlay(image, gt_ann, gt.meta)),
                    ("prediction", render_overlay(image, pred_ann, pred.meta)),
                ],
            )
        )
    rows = []
    for section in ("pooled", "per_image"):
        for cls, values in metrics[section]["per_class"].items():
            rows.append({"averaging": section, "class": cls, **{k: _nan(v) for k, v in values.items()}})
    auc = metrics.get("roc_auc") or {}
    summary = [
        ("held-out images", str(metrics["images"])),
        ("vessel Dice (pooled)", f"{metrics['pooled']['per_class']['vessel']['dice']:.4f}"),
        (
            "ROC-AUC (pooled)",
            "– (the docs' inference config saves no probabilities)"
            if auc.get("pooled") is None
            else f"{auc['pooled']:.4f}",
        ),
        ("model", f"{DEMO_TRAIN_CONFIG['unetkit']['model']} {DEMO_TRAIN_CONFIG['unetkit']['model_options']}"),
        ("time", ", ".join(f"{k} {v:.1f}s" for k, v in times.items())),
    ]
    charts = sorted(Path(run_dir).glob("*.png"))
    return write_report(
        out / "report.html",
        title="unetkit demo — synthetic vessels",
        summary=summary,
        charts=charts,
        tables=[("Held-out metrics", rows)],
        panels=panels,
    )


def _nan(v: object) -> float:
    return float("nan") if v is None else float(v)  # type: ignore[arg-type]
