"""What a user notices first: help texts, one spelling for the output option, one-line notices and hints."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from unetkit.cli.main import build_parser, main
from unetkit.errors import GraphError
from unetkit.project import Project

from .builders import make_project

WRITING_COMMANDS = [
    ["train"],
    ["infer"],
    ["dtl", "run"],
    ["dtl", "draw"],
    ["project", "render"],
    ["import", "masks"],
    ["import", "mvtec"],
    ["export", "onnx"],
    ["demo"],
]


def _parsers(parser, path=()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _sub(path) -> argparse.ArgumentParser:
    return dict(_parsers(build_parser()))[tuple(path)]


def test_top_level_help_is_for_users():
    text = build_parser().format_help()
    assert "entry point" not in text and "argparse" not in text
    assert "Supervisely" in text


@pytest.mark.parametrize("path", [p for p, _ in _parsers(build_parser())], ids=" ".join)
def test_every_option_has_help_showing_its_default(path):
    parser = _sub(path)
    text = parser.format_help()
    assert "%%" not in text and "%(" not in text
    for action in parser._actions:
        if not action.option_strings or isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        flag = "/".join(action.option_strings)
        assert action.help, f"{' '.join(path)} {flag} has no help"
        flag_only = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if action.default not in (None, False, argparse.SUPPRESS) and not flag_only:
            assert "default" in action.help, f"{' '.join(path)} {flag} does not show its default"


@pytest.mark.parametrize("path", WRITING_COMMANDS, ids=" ".join)
def test_every_writing_command_spells_its_output_out_with_aliases(path):
    parser = _sub(path)
    strings = parser._option_string_actions
    assert {"-o", "--out", "--output"} <= set(strings), sorted(strings)
    assert strings["-o"] is strings["--out"] is strings["--output"] and strings["--out"].dest == "out"


def test_the_no_cuda_notice_is_one_clean_line(capsys):
    import warnings

    from unetkit.cli import main as cli_main

    def run(_args):
        warnings.warn("CUDA is not available: training on the CPU", UserWarning, stacklevel=1)
        return 0

    parser = build_parser()
    parser.set_defaults(func=run)
    assert cli_main.run_parsed(parser.parse_args([])) == 0
    err = capsys.readouterr().err
    assert err == "warning: CUDA is not available: training on the CPU\n"


def test_project_constructor_reads_the_folder(tmp_path):
    root = make_project(tmp_path / "p")
    project = Project(root)
    assert len(project) == 1 and project.meta.get_class("road") is not None


def test_misspelled_src_placeholder_gets_a_suggestion(tmp_path, capsys):
    graph = tmp_path / "g.json"
    graph.write_text(
        json.dumps(
            [
                {
                    "action": "data",
                    "src": ["in/*"],
                    "dst": "$data",
                    "settings": {"classes_mapping": "default"},
                },
                {"action": "flip", "src": ["$dta"], "dst": "$f", "settings": {"axis": "vertical"}},
                {"action": "save", "src": ["$f"], "dst": "copy", "settings": {}},
            ]
        )
    )
    assert main(["dtl", "check", str(graph)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "(did you mean '$data'?)" in err[0] and "src[0]" in err[0]


def test_help_runs_in_a_child_without_traceback():
    out = subprocess.run([sys.executable, "-m", "unetkit", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "%08d" in out.stdout and "%%08d" not in out.stdout
    assert GraphError  # the error type the suggestion comes with
