"""Outputs: a failed command leaves nothing behind."""

from __future__ import annotations

import pytest

from training.conftest import make_project as make_train_project
from training.conftest import tiny_config
from unetkit.errors import UnetkitError


def test_a_training_run_failing_before_its_first_checkpoint_leaves_no_run_folder(tmp_path, monkeypatch):
    from unetkit.training import loop
    from unetkit.training.run import train

    project = make_train_project(tmp_path / "in", n_train=2, n_val=1, size=16)

    def boom(*_args, **_kwargs):
        raise UnetkitError("a broken image", file="in/ds0/img/x.png")

    monkeypatch.setattr(loop, "run_process", boom)
    with pytest.raises(UnetkitError, match="a broken image"):
        train(project, tiny_config(epochs=1), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
