import subprocess
import sys

from unetkit.cli.main import main


def test_version_runs_as_module():
    out = subprocess.run([sys.executable, "-m", "unetkit", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("unetkit ")


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
