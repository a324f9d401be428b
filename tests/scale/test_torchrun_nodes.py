"""Training across nodes: `torchrun --nnodes 2` with two "nodes" on 127.0.0.1 (gloo, one process each, c10d
rendezvous as in docs/scale.md) matches one process with the double batch, as the 2-process DDP test does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.conftest import make_project, read_jsonl, tiny_config
from unetkit.ports import free_port
from unetkit.training import train

pytestmark = pytest.mark.filterwarnings("ignore:CUDA is not available")


def _losses(run: Path, kind: str) -> list[float]:
    return [r["metrics"]["loss"] for r in read_jsonl(run / "metrics.jsonl") if r["type"] == kind]


def test_torchrun_two_nodes_match_one_process_with_double_batch(tmp_path):
    proj = make_project(tmp_path / "p", n_train=8, n_val=4)
    base = dict(epochs=2, val_every=1, lr=0.005)
    train(proj, tiny_config(batch_size={"train": 4, "val": 4}, **base), tmp_path / "one", progress=False)
    config = tmp_path / "per_process.json"
    config.write_text(json.dumps(tiny_config(batch_size={"train": 2, "val": 2}, **base)))
    endpoint = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"}
    torchrun = [str(Path(sys.executable).with_name("torchrun")), "--nnodes", "2", "--nproc_per_node", "1",
                "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint, "--rdzv_id", "unetkit-test",
                "--local_addr", "127.0.0.1"]  # fmt: skip
    train_command = ["-m", "unetkit", "train", "--project", str(proj), "--config", str(config),
                     "--out", str(tmp_path / "two_nodes"), "--no-progress"]  # fmt: skip
    logs = [tmp_path / f"node{rank}.log" for rank in (0, 1)]
    nodes = []
    try:
        for rank, log in enumerate(logs):  # output to files: a full pipe would stall its node and the other
            with open(log, "w") as out:
                nodes.append(
                    subprocess.Popen(
                        [*torchrun, "--node_rank", str(rank), *train_command],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=tmp_path,
                    )
                )
        for node in nodes:
            node.wait(timeout=300)
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
                node.wait()
    outputs = "\n".join(log.read_text()[-3000:] for log in logs)
    assert [node.returncode for node in nodes] == [0, 0], outputs
    one, two = tmp_path / "one", tmp_path / "two_nodes"
    train_one, train_two = _losses(one, "train"), _losses(two, "train")
    assert len(train_one) == len(train_two) == 4  # 8 images / (2 nodes × 2) per step: one sample order
    # same samples per step and same initial weights: equal up to per-replica BatchNorm statistics
    assert train_two[0] == pytest.approx(train_one[0], rel=0.05)
    assert _losses(two, "val") == pytest.approx(_losses(one, "val"), rel=0.1)
    assert json.loads((two / "checkpoints" / "last.json").read_text())["checkpoint"] == "00000001"
