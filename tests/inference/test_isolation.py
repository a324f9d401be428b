import subprocess
import sys


def test_inference_never_imports_training():
    code = (
        "import sys, unetkit.inference, unetkit.inference.batch, unetkit.inference.export, "
        "unetkit.inference.evaluate, unetkit.inference.modes, unetkit.cli.infer, unetkit.cli.evaluate, "
        "unetkit.cli.export\n"
        "bad = sorted(m for m in sys.modules if m.startswith('unetkit.training'))\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
