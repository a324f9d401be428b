"""CHASE DB1 recipe benchmark: DTL patches → train → sliding-window inference → pooled metrics.

    python benchmarks/chase.py --train chase_train --test chase_test [--out runs/chase] [--epochs N]

`--train` / `--test` are Supervisely projects of full CHASE DB1 images (e.g. made with `unetkit import masks`
and the examples/chase/select_dev_*.json graphs). Prints F1 (= Dice), ROC-AUC, accuracy, sensitivity and
specificity of the vessel class pooled over all pixels of the test images at threshold 0.5 (argmax of the
two-class softmax), the time taken and the device. `--from-chase DIR` builds the development split itself
(train 01–08, test 09–10) from the raw CHASE DB1 folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "chase"


def build_dev_split(chase_dir: Path, out: Path) -> tuple[Path, Path]:
    """Import the raw folder and split it into chase_train (01–08) and chase_test (09–10) with the recipe graphs."""
    from unetkit.dtl.executor import load_inputs, run_graph
    from unetkit.dtl.graph import build_graph
    from unetkit.project.imports import import_masks

    import_masks(chase_dir, chase_dir, out / "chase", "vessel", mask_suffix="_1stHO")
    projects = load_inputs([out / "chase"])
    metas = {p.name: p.meta for p in projects}
    for name in ("select_dev_train", "select_dev_test"):
        graph = build_graph(json.loads((RECIPE / f"{name}.json").read_text()), metas)
        target = out / name.replace("select_dev_", "chase_")
        run_graph(graph, projects, target, seed=0, progress=False)
    return out / "chase_train", out / "chase_test"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, help="project of full training images")
    ap.add_argument("--test", type=Path, help="project of full test images")
    ap.add_argument("--from-chase", type=Path, help="raw CHASE DB1 folder: build the 01–08 / 09–10 split")
    ap.add_argument("--out", type=Path, default=Path("runs/chase"))
    ap.add_argument("--epochs", type=int, default=None, help="override examples/chase/train.json epochs")
    ap.add_argument("--base-channels", type=int, default=None, help="override the U-Net width")
    ap.add_argument("--workers", type=int, default=2, help="DTL workers")
    ap.add_argument(
        "--recipe",
        choices=("gpu", "cpu"),
        default=None,
        help="gpu: 256² patches, 32-channel U-Net, 40 epochs (examples/chase/*.json); cpu: 128² patches, "
        "16-channel U-Net, 4 epochs (examples/chase/*_cpu.json). Default: gpu when CUDA is available.",
    )
    args = ap.parse_args(argv)

    from unetkit.dtl.executor import load_inputs, run_graph
    from unetkit.dtl.graph import build_graph
    from unetkit.inference import Predictor, parse_config
    from unetkit.inference.batch import infer_project
    from unetkit.inference.evaluate import evaluate_projects
    from unetkit.training import train

    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_chase:
        args.train, args.test = build_dev_split(args.from_chase, args.out)
    if not (args.train and args.test):
        ap.error("give --train and --test, or --from-chase")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    recipe = args.recipe or ("gpu" if device == "cuda" else "cpu")
    suffix = "" if recipe == "gpu" else "_cpu"
    device_name = (
        torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({platform.processor() or 'x86_64'})"
    )
    times: dict[str, float] = {}

    t = time.perf_counter()
    graph_json = json.loads((RECIPE / f"patches{suffix}.json").read_text())
    graph_json[0]["src"] = [f"{args.train.name}/*"]  # the data layer reads the given project
    projects = load_inputs([args.train])
    graph = build_graph(graph_json, {p.name: p.meta for p in projects})
    patches = args.out / "patches"
    report = run_graph(graph, projects, patches, seed=0, workers=args.workers, progress=False)
    times["dtl"] = time.perf_counter() - t
    print(f"DTL: {report.written} patches in {times['dtl']:.0f} s", flush=True)

    config = json.loads((RECIPE / f"train{suffix}.json").read_text())
    if args.epochs is not None:
        config["epochs"] = args.epochs
        config["val_every"] = min(config["val_every"], args.epochs)
    if args.base_channels is not None:
        config["unetkit"]["model_options"]["base_channels"] = args.base_channels
    if device == "cpu":
        config["unetkit"]["amp"] = "off"
    t = time.perf_counter()
    run = train(patches, config, args.out / "run", progress=sys.stderr.isatty())
    times["train"] = time.perf_counter() - t
    print(f"train: {times['train']:.0f} s, best checkpoint {run.best_checkpoint}", flush=True)

    t = time.perf_counter()
    predictor = Predictor.from_checkpoint(run.best_checkpoint, device=device)
    inference_config = parse_config(json.loads((RECIPE / f"inference{suffix}.json").read_text()))
    infer_project(predictor, args.test, args.out / "inference", inference_config, progress=False)
    times["infer"] = time.perf_counter() - t

    m = evaluate_projects(args.test, args.out / "inference")
    vessel = m["pooled"]["per_class"]["vessel"]
    result = {
        "device": device_name,
        "recipe": recipe,
        "images": m["images"],
        "f1": vessel["dice"],
        "roc_auc": (m.get("roc_auc") or {}).get("pooled"),
        "accuracy": m["pixel_accuracy"],
        "sensitivity": vessel["recall"],
        "specificity": vessel["specificity"],
        "iou": vessel["iou"],
        "seconds": {k: round(v, 1) for k, v in times.items()},
        "train_config": config,
    }
    (args.out / "chase_results.json").write_text(json.dumps(result, indent=2))
    print(f"CHASE DB1 on {m['images']} test images, device {device_name}, recipe {recipe}")
    for key in ("f1", "roc_auc", "accuracy", "sensitivity", "specificity"):
        value = result[key]
        print(f"  {key:12s} {'n/a' if value is None else f'{value:.4f}'}")
    print("  time         " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
