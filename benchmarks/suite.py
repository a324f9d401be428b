"""The development suite at equal budget: `unetkit auto` against the hand recipe of `examples/chase/`.

    .venv/bin/python benchmarks/suite.py [--datasets deepcrack,ddti] [--budgets 5,15] [--out runs/suite]

For every dataset and budget (minutes), back to back on the same machine:

1. the data: each devsuite dataset is imported as it ships with the one command README.md gives it
   (`unetkit import masks --split-csv ...`), then split by its `test` tags into a training project (the `train`
   and `val` rows) and a test project; the CHASE DB1 development split is 01–08 → 09–10
   (`benchmarks/chase.py`); `lemons` (a Supervisely sample) tests every 4th image by name. Imports are kept in
   ``OUT/data`` and reused.
2. `auto` on the training project with the budget (`unetkit.auto`, seed 0);
3. the recipe, unchanged but for the project names: the `examples/chase/patches_cpu.json` DTL graph, then
   `examples/chase/train_cpu.json`, for the **same wall-clock seconds `auto` took** (DTL included). Its length is
   set the way `auto`'s is: a refit from its measured step time early in its second epoch (`train(refit=...)`,
   the learning rate held until then), a second one halfway, and a deadline;
4. both models on the test project, `auto`'s with the settings it chose, the recipe's with
   `examples/chase/inference_cpu.json`; Dice pooled over the test pixels per class, neutral pixels left out,
   averaged over the foreground classes.

Test rows are scored, never chosen on: both methods see only the training project. Each row (printed, and
appended to ``OUT/suite.jsonl``) holds the dataset, budget, both Dice, the margin, the minutes and steps of
each, what `auto` chose, the CPU model and ISA, and the commit. A row already in ``suite.jsonl`` for the same
commit, CPU and budget is not run again (``--again`` runs it anyway), so the table can be built in parts.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
RECIPE = REPO / "examples" / "chase"
CAMVID = "Sky,Building,Pole,Road,Pavement,Tree,SignSymbol,Fence,Car,Pedestrian,Bicyclist"


@dataclass(frozen=True)
class Dataset:
    """A suite dataset: its folder under the data root and the `unetkit import masks` options README.md gives."""

    folder: str
    options: tuple[str, ...] = ()
    kind: str = "split_csv"  # split_csv | chase | project
    test_every: int = 4  # project: every n-th image by name is a test image
    extra: dict = field(default_factory=dict)


DATASETS = {
    "deepcrack": Dataset("devsuite/deepcrack", ("--class", "crack")),
    "dsb2018": Dataset("devsuite/dsb2018_stage1", ("--instances", "--class", "nucleus")),
    "camvid": Dataset("devsuite/camvid", ("--classes", CAMVID, "--ignore", "11")),
    "ddti": Dataset("devsuite/ddti_thyroid_us", ("--class", "nodule")),
    "chase": Dataset("chasedb1", kind="chase"),
    "lemons": Dataset("sly_samples/lemons_annotated", kind="project"),
}


def split_graph(source: str, dst: str, condition: dict, *, meets: bool) -> list[dict]:
    """A DTL graph writing project ``dst`` from the images of ``source`` that meet ``condition`` (``meets``) or
    that do not (a graph has one save layer, so the two halves take one graph each)."""
    routes = ["$keep", "null"] if meets else ["null", "$keep"]
    return [
        {"action": "data", "src": [f"{source}/*"], "dst": "$all", "settings": {"classes_mapping": "default"}},
        {"action": "if", "src": ["$all"], "dst": routes, "settings": {"condition": condition}},
        {"action": "supervisely", "src": ["$keep"], "dst": dst, "settings": {}},
    ]


def run_dtl(graph: list[dict], inputs: list[Path], out: Path) -> None:
    """Run ``graph`` on ``inputs``, writing its output project to the folder ``out``."""
    from unetkit.dtl.executor import load_inputs, run_graph
    from unetkit.dtl.graph import build_graph

    projects = load_inputs(inputs)
    built = build_graph(graph, {p.name: p.meta for p in projects})
    run_graph(built, projects, out, seed=0, progress=False)


def prepare(name: str, root: Path, work: Path) -> tuple[Path, Path]:
    """(training project, test project) of dataset ``name``, imported and split once under ``work``."""
    train, test = work / f"{name}_train", work / f"{name}_test"
    if (train / "meta.json").exists() and (test / "meta.json").exists():
        return train, test
    spec = DATASETS[name]
    source = root / spec.folder
    if not source.exists():
        raise SystemExit(f"suite: {source} is missing (the data root is --root)")
    work.mkdir(parents=True, exist_ok=True)
    if spec.kind == "chase":
        from chase import build_dev_split  # benchmarks/chase.py

        built_train, built_test = build_dev_split(source, work / "chase_import")
        built_train.rename(train)
        built_test.rename(test)
        return train, test
    if spec.kind == "project":
        imported, names = source, sorted(p.name for p in (source).glob("*/img/*"))
        tests = [Path(n).stem for i, n in enumerate(names) if i % spec.test_every == spec.test_every - 1]
        condition = {"regex_names": ["^(" + "|".join(map(re.escape, tests)) + ")$"]}
    else:
        from unetkit.cli.main import main as unetkit_main

        imported = work / f"{name}_all"
        argv = [
            "import",
            "masks",
            "--split-csv",
            str(source / "split.csv"),
            *spec.options,
            "--out",
            str(imported),
        ]
        if unetkit_main(argv) != 0:
            raise SystemExit(f"suite: unetkit {' '.join(argv)} failed")
        condition = {"tags": ["test"]}
    run_dtl(split_graph(imported.name, train.name, condition, meets=False), [imported], train)
    run_dtl(split_graph(imported.name, test.name, condition, meets=True), [imported], test)
    return train, test


def foreground_dice(gt: Path, pred: Path, config: dict | None, run: Path) -> float:
    """Mean over the foreground classes of the Dice pooled over the test pixels (neutral left out)."""
    from unetkit.inference import InferenceConfig, Predictor
    from unetkit.inference.batch import infer_project
    from unetkit.inference.evaluate import evaluate_projects

    settings = InferenceConfig.model_validate(config) if config else None
    predictor = Predictor.from_checkpoint(run, settings=settings)
    infer_project(predictor, gt, pred, predictor.settings, progress=False)
    per_class = evaluate_projects(gt, pred)["pooled"]["per_class"]
    scores = [m["dice"] for title, m in per_class.items() if title not in ("bg", "neutral")]
    return float(sum(scores) / len(scores))


def run_auto(train: Path, out: Path, minutes: float) -> dict:
    from unetkit.auto.run import auto

    started = time.time()
    result = auto(train, out, budget=f"{minutes * 60:.0f}s", seed=0, progress=False)
    plan = result.plan
    return {
        "seconds": time.time() - started,
        "steps": sum(plan.fold_iterations or []) or plan.iterations,
        "chose": {
            "patch": plan.patch,
            "batch": plan.batch_size,
            "folds": plan.folds,
            "tta": result.choices.tta,
            "threshold": result.choices.threshold,
            "network": plan.network.model_dump(),
        },  # fmt: skip
    }


def recipe_graph(train: Path, patches: str) -> list[dict]:
    """examples/chase/patches_cpu.json with the project names changed (nothing else)."""
    graph = json.loads((RECIPE / "patches_cpu.json").read_text())
    for layer in graph:
        if layer["action"] == "data":
            layer["src"] = [f"{train.name}/*"]
        if layer["action"] == "supervisely":
            layer["dst"] = patches
    return graph


def run_recipe(train: Path, out: Path, seconds: float) -> dict:
    """The recipe for ``seconds`` of wall clock (DTL + training), sized by one refit in its second epoch."""
    from unetkit.auto.run import REFIT_AGAIN
    from unetkit.project import Project
    from unetkit.training import train as train_model
    from unetkit.training.setup import Refit

    started = time.time()
    end = started + seconds
    patches = out / "patches"
    if not (patches / "meta.json").exists():
        run_dtl(recipe_graph(train, patches.name), [train], patches)
    config = json.loads((RECIPE / "train_cpu.json").read_text())
    project = Project.read(patches)
    tagged = sum("train" in {t.name for t in i.read_annotation(project.meta).tags} for i in project.items())
    per_epoch = math.ceil(tagged / config["batch_size"]["train"])
    at = per_epoch + max(
        2, per_epoch // 10
    )  # early in the second epoch: past the first epoch's one-off costs
    config["unetkit"]["scheduler"]["hold_iters"] = at  # the refit changes nothing already done
    refit = Refit(
        at, end, reserve_s=min(30.0, 0.05 * seconds), validations=config["epochs"], again_at=REFIT_AGAIN
    )
    result = train_model(patches, config, out / "run", progress=False, refit=refit, deadline=end)
    steps = max((r.get("iteration", 0) for r in result.records), default=0)
    return {"seconds": time.time() - started, "steps": steps, "run": result.run_dir}


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return (out.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def where_it_runs() -> tuple[dict, str]:
    """Print the machine, CPU model, ISA and commit; return (the CPU description, the commit)."""
    from ratios import machine_line

    from unetkit.models.numerics import cpu_description

    cpu, at = cpu_description(), commit()
    print(machine_line())
    print(f"cpu: {cpu['cpu']}; torch ISA {cpu['torch_isa']}; caps {cpu['env'] or 'none'}; commit {at}")
    return cpu, at


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSON-lines table (none when it does not exist yet)."""
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def one_row(name: str, minutes: float, args, cpu: dict) -> dict:
    import os

    train, test = prepare(name, args.root, args.out / "data")
    load_before = os.getloadavg()[0]
    where = args.out / f"{name}_{minutes:g}m"
    if where.exists():  # an earlier run of this row (another commit, or --again): this run starts afresh
        import shutil

        shutil.rmtree(where)
    a = run_auto(train, where / "auto", minutes)
    r = run_recipe(train, where / "recipe", a["seconds"])
    auto_dice = foreground_dice(test, where / "auto_test", None, where / "auto")
    recipe_config = json.loads((RECIPE / "inference_cpu.json").read_text())
    recipe_dice = foreground_dice(test, where / "recipe_test", recipe_config, r["run"])
    auto_dice, recipe_dice = (
        round(auto_dice, 4),
        round(recipe_dice, 4),
    )  # the margin is that of the printed values
    return {
        "dataset": name, "budget_min": minutes, "auto_dice": auto_dice,
        "recipe_dice": recipe_dice, "margin": round(auto_dice - recipe_dice, 4),
        "auto_min": round(a["seconds"] / 60, 2), "recipe_min": round(r["seconds"] / 60, 2),
        "auto_steps": a["steps"], "recipe_steps": r["steps"], "auto_chose": a["chose"],
        "cpu": cpu["cpu"], "isa": cpu["torch_isa"], "caps": cpu["env"], "commit": args.commit,
        "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # 1-minute load average, start and end
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets", default=",".join(DATASETS), help=f"comma-separated, of {', '.join(DATASETS)}"
    )
    ap.add_argument("--budgets", default="5,15", help="minutes, comma-separated (default: 5,15)")
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data", help="the data root")
    ap.add_argument("--out", type=Path, default=Path("runs/suite"))
    ap.add_argument("--again", action="store_true", help="run rows that suite.jsonl already holds")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    budgets = [float(b) for b in args.budgets.split(",")]
    cpu, args.commit = where_it_runs()
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "suite.jsonl"
    done = read_rows(table)
    rows = []
    for minutes in budgets:
        for name in names:
            same = [d for d in done if (d["dataset"], d["budget_min"], d["commit"], d["cpu"]) ==
                    (name, minutes, args.commit, cpu["cpu"])]  # fmt: skip
            if same and not args.again:
                rows.append(same[-1])
                continue
            row = one_row(name, minutes, args, cpu)
            with table.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{'dataset':10s} {'budget':>6s} {'auto':>7s} {'recipe':>7s} {'margin':>7s} {'min a/r':>11s} {'steps a/r':>13s}"
    )
    for r in rows:
        print(f"{r['dataset']:10s} {r['budget_min']:6g} {r['auto_dice']:7.4f} {r['recipe_dice']:7.4f} "
              f"{r['margin']:+7.4f} {r['auto_min']:5.2f}/{r['recipe_min']:5.2f} "
              f"{r['auto_steps']:6d}/{r['recipe_steps']:6d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
