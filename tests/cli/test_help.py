"""`--help` of every command as a newcomer reads it: a description, one style for defaults, required options shown
as required, one --device default."""

from __future__ import annotations

import argparse
import re

import pytest

from unetkit.cli.main import build_parser, main


def _parsers(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


PARSERS = dict(_parsers(build_parser()))


def _help(capsys, *path: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_every_registered_command_is_covered():
    commands = {path[0] for path in PARSERS if path}
    assert {"train", "infer", "serve", "demo", "evaluate", "export", "project", "dtl", "import"} <= commands


@pytest.mark.parametrize("path", list(PARSERS), ids=lambda p: " ".join(p) or "unetkit")
def test_help_has_a_description_and_one_default_style(path, capsys):
    text = _help(capsys, *path)
    description = PARSERS[path].description
    assert description and description.strip(), f"unetkit {' '.join(path)} has no description"
    flat = " ".join(text.split())  # help lines are wrapped: "(default:\n   x)"
    assert " ".join(description.split()[:4]) in flat
    bad = re.findall(r"\(default(?!: )[^)]{0,30}", flat)
    assert not bad, f"unetkit {' '.join(path)}: write defaults as '(default: X)', not {bad}"


def test_train_shows_config_as_required_except_with_resume(capsys, tmp_path):
    text = _help(capsys, "train")
    usage = text.split("\n\n")[0]
    first, resume = usage.splitlines()
    assert "--config FILE" in first and "[--config FILE]" not in first and "--resume" not in first
    assert "--resume [--config FILE]" in resume
    flat = " ".join(text.split())
    assert "required, except with --resume" in flat
    assert main(["train", "--project", str(tmp_path / "p"), "--out", str(tmp_path / "r")]) == 2
    assert "--config FILE is required (except with --resume" in capsys.readouterr().err
    # --resume needs no --config: it gets past that check and fails on the missing run instead
    assert main(["train", "--project", str(tmp_path / "p"), "--out", str(tmp_path / "r"), "--resume"]) == 2
    assert "cannot resume: the run folder does not exist" in capsys.readouterr().err


def test_infer_and_serve_share_the_device_default(capsys):
    for command in ("infer", "serve"):
        action = PARSERS[(command,)]._option_string_actions["--device"]
        assert action.default == "auto"
        flat = " ".join(_help(capsys, command).split())
        assert "--device DEVICE torch device: auto (cuda:" in flat and "else cpu" in flat


@pytest.mark.parametrize("path", [("infer",), ("serve",), ("export", "onnx")], ids=" ".join)
def test_model_is_a_checkpoint_or_run_folder(path):
    assert PARSERS[path]._option_string_actions["--model"].help.startswith("checkpoint or run folder")


def test_a_zero_default_is_shown(capsys):
    flat = " ".join(_help(capsys, "demo").split())
    assert "the DTL run and training (default: 0)" in flat
