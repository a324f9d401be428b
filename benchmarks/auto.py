"""`unetkit auto` on the CHASE DB1 development split (train 01–08 → test 09–10) and on a multi-class sample.

    python benchmarks/auto.py --chase ../shared/data/chasedb1 --budgets 15 60 [--out runs/auto_bench]
    python benchmarks/auto.py --multiclass ../shared/data/sly_samples/lemons_annotated --budgets 5

For each budget (minutes): `auto` plans, trains and chooses on the training project only; then the run is applied
to the test images with the settings it chose (no config given) plus `save_probabilities`, and F1 (= Dice), ROC-AUC,
sensitivity and specificity of the vessel class are pooled over the test pixels at the chosen threshold. Prints
the device, the minutes spent and the plan's main choices. `--recipe` also runs benchmarks/chase.py's CPU recipe
for comparison (its own fixed schedule; the minutes it took are printed beside).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def evaluate_run(run: Path, test: Path, out: Path) -> dict:
    from unetkit.inference import Predictor
    from unetkit.inference.batch import infer_project
    from unetkit.inference.evaluate import evaluate_projects

    predictor = Predictor.from_checkpoint(run)  # the run's own settings (the card's), probabilities kept
    config = predictor.settings.with_mode(save_probabilities=True)
    infer_project(predictor, test, out, config, progress=False)
    m = evaluate_projects(test, out)
    return m


def chase(args) -> list[dict]:
    from chase import build_dev_split  # benchmarks/chase.py

    from unetkit.auto.run import auto

    args.out.mkdir(parents=True, exist_ok=True)
    train, test = build_dev_split(args.chase, args.out / "data")
    rows = []
    for minutes in args.budgets:
        run = args.out / f"auto_{minutes}m"
        started = time.perf_counter()
        result = auto(train, run, budget=f"{minutes}m", seed=0, progress=False)
        spent = (time.perf_counter() - started) / 60
        m = evaluate_run(run, test, args.out / f"inference_{minutes}m")
        vessel = m["pooled"]["per_class"]["vessel"]
        row = {
            "dataset": "CHASE DB1 dev split (train 01-08, test 09-10)",
            "budget_min": minutes,
            "minutes": round(spent, 2),
            "device": device_name(),
            "f1": vessel["dice"],
            "roc_auc": (m.get("roc_auc") or {}).get("pooled"),
            "sensitivity": vessel["recall"],
            "specificity": vessel["specificity"],
            "threshold": result.choices.threshold,
            "tta": result.choices.tta,
            "folds": result.plan.folds,
            "patch": result.plan.patch,
            "iterations_planned": result.plan.iterations,
            "iterations_run": result.plan.fold_iterations,
            "network": result.plan.network.model_dump(),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.recipe:
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "benchmarks" / "chase.py"), "--train", str(train), "--test",
                        str(test), "--out", str(args.out / "recipe"), "--recipe", "cpu"], check=True)  # fmt: skip
        recipe = json.loads((args.out / "recipe" / "chase_results.json").read_text())
        recipe["minutes"] = round((time.perf_counter() - started) / 60, 2)
        print(json.dumps({k: recipe[k] for k in ("f1", "roc_auc", "sensitivity", "specificity", "minutes")}))
    return rows


def multiclass(args) -> list[dict]:
    from unetkit.auto.run import auto

    rows = []
    for minutes in args.budgets:
        run = args.out / f"multiclass_{minutes}m"
        started = time.perf_counter()
        result = auto(args.multiclass, run, budget=f"{minutes}m", seed=0, progress=False)
        row = {
            "dataset": args.multiclass.name,
            "budget_min": minutes,
            "minutes": round((time.perf_counter() - started) / 60, 2),
            "device": device_name(),
            "out_of_fold_dice": result.choices.dice,
            "folds": result.plan.folds,
            "classes": list(result.plan.fingerprint["classes"]),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chase", type=Path, help="the raw CHASE DB1 folder")
    ap.add_argument("--multiclass", type=Path, help="a multi-class Supervisely project")
    ap.add_argument("--budgets", type=float, nargs="+", default=[15, 60], help="budgets in minutes")
    ap.add_argument("--out", type=Path, default=Path("runs/auto_bench"))
    ap.add_argument("--recipe", action="store_true", help="also run benchmarks/chase.py's CPU recipe")
    args = ap.parse_args(argv)
    if not (args.chase or args.multiclass):
        ap.error("give --chase and/or --multiclass")
    rows = (chase(args) if args.chase else []) + (multiclass(args) if args.multiclass else [])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "auto_results.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
