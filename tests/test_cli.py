"""The CLI's contract: --help, --version and exit codes (0 ok, 2 error with a one-line message)."""

import subprocess
import sys

from compsec import __version__
from compsec.cli.main import run


def test_version_prints_and_exits_zero(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"compsec {__version__}"


def test_help_exits_zero(capsys):
    assert run(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_unknown_verb_is_a_usage_error():
    assert run(["no-such-verb"]) == 2


def test_console_script_reports_errors_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "compsec", "no-such-verb"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
