"""The HTML reports, rendered in headless Chromium (Debian's ``chromium``, installed by ``make test``): no
console errors, the key elements present, a screenshot saved.  Pages have no scripts and load nothing remote."""

import shutil
import subprocess
from pathlib import Path

import pytest

from compsec.audit.config import AuditConfig
from compsec.audit.runner import run_audit
from compsec.demo.index import write_index
from compsec.demo.pipeline import _headline, _scan, _survival

pytestmark = pytest.mark.browser
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
    return path


def _render(page: Path, tmp_path: Path) -> tuple[str, list[str], Path]:
    """(DOM after load, console lines, screenshot path) of ``page``."""
    base = [_chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    shot = tmp_path / (page.parent.name + "-" + page.stem + ".png")
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,2400", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    return dom.stdout, console, shot


@pytest.fixture(scope="module")
def demo_folder(tiny_model_dir, tmp_path_factory):
    """A demo folder with a real (small) audit, real scans of the tiny assistant and a real digits survival run."""
    out = tmp_path_factory.mktemp("demo")
    summary = run_audit(AuditConfig(model=str(tiny_model_dir), out=str(out / "audit-benign"), variants=("int2-rtn",),
                                    probes=("refusal", "over-refusal"), limit=3, max_new_tokens=8,
                                    contrast=False)).summary
    scans = {"benign": _scan(tiny_model_dir, out / "scan-benign.json"),
             "attacked": _scan(tiny_model_dir, out / "scan-attacked.json")}
    _survival(out / "survival", seed=0)
    write_index(out, _headline(summary, {}, summary, scans, summary, "McDonald's"))
    return out


def test_the_console_check_can_fail(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text("<html><body><script>undefinedFunction()</script></body></html>")
    _, console, _ = _render(page, tmp_path)
    assert any("undefinedFunction" in line for line in console)


def test_audit_report_renders_without_console_errors(demo_folder, tmp_path):
    dom, console, shot = _render(demo_folder / "audit-benign" / "report.html", tmp_path)
    assert console == []
    assert "Paired differential safety audit" in dom and "Flips against the original" in dom
    assert 'src="data:image/png;base64,' in dom and "int2-rtn" in dom
    assert shot.stat().st_size > 10_000


def test_demo_index_renders_without_console_errors(demo_folder, tmp_path):
    dom, console, shot = _render(demo_folder / "index.html", tmp_path)
    assert console == []
    for anchor in ('id="reports"', 'id="benign"', 'id="attack"', 'id="scan"', 'id="survival"'):
        assert anchor in dom
    assert 'href="audit-benign/report.html"' in dom and "clean" in dom
    assert shot.stat().st_size > 10_000
