import subprocess
import sys

from deblurkit.cli import COMMANDS, main


def test_version_is_fast_and_prints(capsys):
    assert main(["--version"]) == 0
    assert "deblurkit" in capsys.readouterr().out


def test_help_does_not_import_torch():
    code = "import sys; from deblurkit.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "a command module imports torch at top level"


def test_every_command_has_help():
    for name in COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "deblurkit", name, "--help"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (name, proc.stderr)
