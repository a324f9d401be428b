"""Rules measured across the development suite, on validation parts only (issue "auto that wins on every kind").

    .venv/bin/python benchmarks/rules.py [--variants base,sgd] [--datasets ddti,deepcrack] [--minutes 5]

For every variant and dataset, back to back on the same machine: `unetkit auto` on the dataset's **training**
project (the test rows are split off first, as `benchmarks/suite.py` does, and never read here) with the
variant's plan overrides (`auto(overrides=...)`: the run still probes its speed and refits each fold to the
budget, so every variant gets the same wall-clock minutes). The score is `auto`'s own validation: the Dice pooled
over its held-out images (out of fold), averaged over the foreground classes, before the choices made on them
(``plain``: argmax / threshold 0.5, no TTA, no clean-up) and after (``chosen``).

A variant is kept as a rule only when it helps across the suite, not on one dataset: the table prints, per
variant, each dataset's gain over ``base``, the mean gain and on how many datasets it gained. Rows go to
``OUT/rules.jsonl`` (with the commit, CPU, ISA and load); a row already there for the same variant, dataset,
minutes, seed, commit and CPU is reused (``--again`` runs it anyway). ``--seed`` changes `auto`'s seed: a
second seed draws another held-out fifth and other training streams, so base and variant are compared again on
other validation images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

# nnU-Net's optimiser: SGD 0.01, Nesterov momentum 0.99, weight decay 3e-5, poly decay (power 0.9)
SGD = {"optimizer": {"name": "sgd", "momentum": 0.99, "nesterov": True, "weight_decay": 3e-5}, "lr": 0.01,
       "schedule": "poly"}  # fmt: skip
VARIANTS: dict[str, dict] = {
    "base": {},
    "sgd": SGD,
    "instance_norm": {"network": {"model_options": {"norm": "instance"}}},
    # residual units in encoder and decoder, same width and depth (resunet has no deep-supervision heads)
    "resunet": {"network": {"model": "resunet", "model_options": {"deep_supervision": None}}},
    "width32": {"network": {"model_options": {"base_channels": 32}}},
    # nnU-Net's deep supervision: 1×1 heads on the decoder levels, losses weighted 1, ½, ¼ … (now rule "Network")
    "deep_supervision": {"network": {"model_options": {"deep_supervision": True}}},
    "no_deep_supervision": {"network": {"model_options": {"deep_supervision": False}}},
    "data_worker": {"data_workers": 1},  # decode, crop and augment in a process beside the step
    "fg_prob_0.66": {"foreground_prob": 0.66},
    # rare and thin classes weigh more in the loss: sqrt(background share ÷ class share), 1 to 10
    "class_weights": {"class_weighting": "inverse_sqrt_frequency"},
    "no_intensity_aug": {"augment": {"brightness": 0.0, "contrast": 0.0, "gamma": 0.0}},
    "adam_lr_1e-3": {"lr": 0.001},
    # patch against batch at about the same pixels a step: rule "Patch size" from another start side
    # smaller patches, more of them (a 128-patch dataset: 14 of 96² for 8 of 128²)
    "patch_96": {"start_patch": 96},
    "patch_192": {"start_patch": 192},  # larger patches, fewer (4 of 192²)
    # augmentation strength (a rule by dataset size would follow from where each gains)
    "aug_light": {"augment": {"scale": [0.95, 1.05], "brightness": 0.05, "contrast": 0.05, "gamma": 0.05}},
    "aug_strong": {"augment": {"scale": [0.7, 1.4], "brightness": 0.3, "contrast": 0.3, "gamma": 0.3}},
}
RULE_DATASETS = "ddti,deepcrack,dsb2018,camvid,chase"  # lemons: 1–2 held-out images, too few to decide on


def plain_dice(choices) -> float:
    """The held-out Dice before any choice (the first step's "before"), or the chosen Dice when none was tried."""
    for step in choices.steps:
        if "dice_before" in step:
            return float(step["dice_before"])
    return float(choices.dice)


def data_share(run: Path) -> float:
    """The share of fold 0's training time its steps waited for their batches (the train records' ``data_s``)."""
    records = [json.loads(x) for x in (run / "folds" / "0" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r.get("type") == "train" and "data_s" in r][-1]
    return last["data_s"] / max(last["time"], 1e-9)


def one_row(variant: str, name: str, minutes: float, args, cpu: dict) -> dict:
    from suite import prepare

    from unetkit.auto.run import auto

    train, _test = prepare(name, args.root, args.out / "data")  # the test half is never opened here
    where = args.out / (f"{name}_{variant}_{minutes:g}m" + (f"_seed{args.seed}" if args.seed else ""))
    if where.exists():
        shutil.rmtree(where)
    load_before = os.getloadavg()[0]
    started = time.time()
    result = auto(train, where, budget=f"{minutes * 60:.0f}s", seed=args.seed, progress=False,
                  overrides=VARIANTS[variant])  # fmt: skip
    seconds = time.time() - started
    plan = result.plan
    return {
        "variant": variant, "dataset": name, "minutes_budget": minutes, "seed": args.seed, "plain": round(plain_dice(result.choices), 4),
        "chosen": round(float(result.choices.dice), 4), "minutes": round(seconds / 60, 2),
        "data_share": round(data_share(where), 4),
        "steps": sum(plan.fold_iterations or []) or plan.iterations, "folds": plan.folds, "patch": plan.patch,
        "batch": plan.batch_size, "network": plan.network.model_dump(), "cpu": cpu["cpu"], "isa": cpu["torch_isa"],
        "caps": cpu["env"], "commit": args.commit, "load": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }  # fmt: skip


def table(rows: list[dict]) -> str:
    """Per variant: each dataset's chosen Dice and its gain over base, the mean gain, datasets gained."""
    by = {(r["variant"], r["dataset"]): r for r in rows}
    datasets = sorted({r["dataset"] for r in rows})
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in rows)]
    lines = [
        f"{'variant':18s} " + " ".join(f"{d:>16s}" for d in datasets) + f" {'mean gain':>10s} {'gained':>7s}"
    ]
    for v in variants:
        cells, gains = [], []
        for d in datasets:
            r, b = by.get((v, d)), by.get(("base", d))
            if r is None:
                cells.append(f"{'-':>16s}")
                continue
            gain = r["chosen"] - b["chosen"] if b is not None and v != "base" else None
            if gain is not None:
                gains.append(gain)
            cells.append(
                f"{r['chosen']:.4f}" + (f" ({gain:+.3f})" if gain is not None else "         ").rjust(7)
            )
        mean = f"{sum(gains) / len(gains):+10.4f}" if gains else f"{'':>10s}"
        won = f"{sum(g > 0 for g in gains)}/{len(gains)}" if gains else ""
        lines.append(f"{v:18s} " + " ".join(c.rjust(16) for c in cells) + f" {mean} {won:>7s}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from suite import DATASETS, read_rows, where_it_runs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="base,sgd,instance_norm,resunet,width32,data_worker",
                    help=f"comma-separated, of {', '.join(VARIANTS)}")  # fmt: skip
    ap.add_argument("--datasets", default=RULE_DATASETS, help=f"comma-separated, of {', '.join(DATASETS)}")
    ap.add_argument("--minutes", type=float, default=4.0, help="the budget of every run (default 4)")
    ap.add_argument("--root", type=Path, default=REPO.parent / "shared" / "data", help="the data root")
    ap.add_argument("--out", type=Path, default=Path("runs/rules"))
    ap.add_argument("--seed", type=int, default=0,
                    help="auto's seed: its held-out fifth, folds and training streams (default 0)")  # fmt: skip
    ap.add_argument("--again", action="store_true", help="run rows that rules.jsonl already holds")
    args = ap.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    for label, chosen, known in (("variant", variants, VARIANTS), ("dataset", names, DATASETS)):
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            ap.error(f"unknown {label}(s) {', '.join(unknown)}; known: {', '.join(known)}")
    cpu, args.commit = where_it_runs()
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "rules.jsonl"
    done = read_rows(store)
    rows = []
    for variant in variants:
        for name in names:
            key = (variant, name, args.minutes, args.seed, args.commit, cpu["cpu"])
            same = [
                d
                for d in done
                if (d["variant"], d["dataset"], d["minutes_budget"], d.get("seed", 0), d["commit"], d["cpu"])
                == key
            ]
            if same and not args.again:
                rows.append(same[-1])
                continue
            row = one_row(variant, name, args.minutes, args, cpu)
            with store.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\nheld-out (validation) Dice after the choices; in brackets the gain over base\n" + table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
