"""Resume after SIGKILL mid-epoch, and DDP with 2 CPU processes (gloo) against one process."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import make_project, read_jsonl, tiny_config
from unetkit.training import train

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")
TESTS_DIR = Path(__file__).resolve().parent


def _val_losses(run):
    return [r["metrics"]["loss"] for r in read_jsonl(run / "metrics.jsonl") if r["type"] == "val"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_resume_after_sigkill_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    proj = make_project(tmp_path / "p", n_train=8, n_val=2)
    cfg = tiny_config(epochs=4, val_every=0.5, batch_size={"train": 1, "val": 2})
    cfg["unetkit"]["deterministic"] = True  # bit-stable on CUDA as well
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    killed = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import sys, warnings, torch
        warnings.simplefilter("ignore")
        torch.set_num_threads(1)
        from unetkit.training import train
        train({str(proj)!r}, {str(tmp_path / "cfg.json")!r}, {str(killed)!r}, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = killed / "metrics.jsonl"
    deadline = time.time() + 120
    try:
        while time.time() < deadline:  # kill once a checkpoint exists and 2 more iterations ran (mid-epoch)
            if metrics.exists():
                recs = [json.loads(x) for x in metrics.read_text().splitlines() if x.endswith("}")]
                ck = [r["iteration"] for r in recs if r["type"] == "checkpoint"]
                tr = [r for r in recs if r["type"] == "train"]
                if (
                    ck
                    and tr
                    and tr[-1]["iteration"] >= ck[-1] + 2
                    and (tr[-1]["iteration"] % 8) not in (0, 4)
                ):
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = [r["iteration"] for r in read_jsonl(metrics) if r["type"] == "train"]
    assert before[-1] < 32

    res = train(proj, None, killed, resume=True, progress=False)
    recs = read_jsonl(killed / "metrics.jsonl")
    iters = [r["iteration"] for r in recs if r["type"] == "train"]
    assert iters == list(range(1, 33))  # cut back to the checkpoint, then continued: no gap, no duplicate
    assert res.last_checkpoint.name == "00000007"

    ref = tmp_path / "ref"
    train(proj, cfg, ref, progress=False)
    assert _val_losses(killed) == pytest.approx(_val_losses(ref), rel=1e-5, abs=1e-6)


def test_ddp_two_cpu_processes_match_one_process_with_double_batch(tmp_path):
    proj = make_project(tmp_path / "p", n_train=8, n_val=4)
    base = dict(epochs=2, val_every=1, lr=0.005)
    single = train(
        proj, tiny_config(batch_size={"train": 4, "val": 4}, **base), tmp_path / "one", progress=False
    )
    cfg = tiny_config(batch_size={"train": 2, "val": 2}, **base)
    cfg["unetkit"]["ddp_cpu_processes"] = 2
    double = train(proj, cfg, tmp_path / "ddp", progress=False)
    a, b = _val_losses(tmp_path / "one"), _val_losses(tmp_path / "ddp")
    assert len(a) == len(b) == 2
    train_a = [r["metrics"]["loss"] for r in single.records if r["type"] == "train"]
    train_b = [r["metrics"]["loss"] for r in double.records if r["type"] == "train"]
    assert len(train_a) == len(train_b) == 4  # 8 images / (2 × 2) per step
    # same samples per step and same initial weights: equal up to per-replica BatchNorm statistics
    assert train_a[0] == pytest.approx(train_b[0], rel=0.05)
    assert b == pytest.approx(a, rel=0.1)
    assert (
        json.loads((tmp_path / "ddp" / "checkpoints" / "last.json").read_text())["checkpoint"] == "00000001"
    )


def test_unused_unet_v2_block_is_excluded_from_ddp():
    import torch

    from unetkit.models import create_model
    from unetkit.training.ddp import freeze_unused_parameters

    model = create_model("unet_v2", 2)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    frozen = freeze_unused_parameters(model, (2, 3, 32, 32), torch.device("cpu"))
    assert frozen and all(n.startswith("blocks.0.") for n in frozen)
    assert len(frozen) == sum(1 for n, _ in model.named_parameters() if n.startswith("blocks.0."))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # BatchNorm stats untouched
    assert all(p.grad is None for p in model.parameters())
