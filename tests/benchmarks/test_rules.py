"""benchmarks/rules.py end to end on a tiny generated suite: a variant's overrides reach its run, which still
refits to the budget; validation-only scores; the gain table; rows reused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from test_suite import write_tiny_ddti

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import rules  # noqa: E402


def test_rules_runs_variants_on_the_training_part_and_tables_their_gains(tmp_path, capsys):
    root = write_tiny_ddti(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--variants", "base,instance_norm", "--datasets", "ddti", "--minutes", "0.5", "--root", str(root),
            "--out", str(out)]  # fmt: skip
    assert rules.main(argv) == 0
    rows = {r["variant"]: r for r in map(json.loads, (out / "rules.jsonl").read_text().splitlines())}
    assert set(rows) == {"base", "instance_norm"}
    for variant, row in rows.items():
        assert 0 <= row["plain"] <= 1 and 0 <= row["chosen"] <= 1 and row["chosen"] >= row["plain"] - 1e-9
        assert row["steps"] > 0 and row["cpu"] and row["commit"] and 0 <= row["data_share"] < 1
        run = out / f"ddti_{variant}_0.5m"
        plan = json.loads((run / "plan.json").read_text())
        assert plan["fingerprint"]["images"] == 6  # the training part only: the 2 test images stay out
        records = [json.loads(x) for x in (run / "folds" / "0" / "metrics.jsonl").read_text().splitlines()]
        assert any(r["type"] == "refit" for r in records)  # an override still sizes itself to the budget
    assert rows["instance_norm"]["network"]["model_options"]["norm"] == "instance"
    assert "norm" not in rows["base"]["network"]["model_options"]
    printed = capsys.readouterr().out
    gain = rows["instance_norm"]["chosen"] - rows["base"]["chosen"]
    assert "instance_norm" in printed and f"({gain:+.3f})" in printed and "mean gain" in printed
    assert rules.main(argv) == 0  # the same commit and CPU: both rows reused
    assert len((out / "rules.jsonl").read_text().splitlines()) == 2
    # a second seed is a new row, in its own folder, with auto's seed (another held-out fifth)
    assert rules.main([*argv[:1], "base", *argv[2:], "--seed", "1"]) == 0
    rows = [json.loads(x) for x in (out / "rules.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 0, 1] and rows[2]["variant"] == "base"
    assert json.loads((out / "ddti_base_0.5m_seed1" / "plan.json").read_text())["seed"] == 1


def test_the_gain_table_counts_the_datasets_a_variant_gained_on():
    row = {"minutes_budget": 5}
    rows = [{**row, "variant": "base", "dataset": "a", "chosen": 0.5}, {**row, "variant": "base", "dataset": "b",
            "chosen": 0.7}, {**row, "variant": "sgd", "dataset": "a", "chosen": 0.6},
            {**row, "variant": "sgd", "dataset": "b", "chosen": 0.65}]  # fmt: skip
    text = rules.table(rows)
    sgd = next(line for line in text.splitlines() if line.startswith("sgd"))
    assert "(+0.100)" in sgd and "(-0.050)" in sgd and "+0.0250" in sgd and "1/2" in sgd


def test_every_variant_is_a_valid_plan_override():
    from unetkit.auto.plan import Plan

    plan = Plan(budget_s=60, patch=128, batch_size=8, iterations=10)
    for name, overrides in rules.VARIANTS.items():
        assert plan.overridden(overrides).model_dump() != plan.model_dump() or name == "base", name
