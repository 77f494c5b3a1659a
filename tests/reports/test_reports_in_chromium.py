"""The HTML reports, rendered in headless Chromium (Debian's ``chromium``, installed by ``make test``): no
console errors, the key elements present, a screenshot saved.  Pages have no scripts and load nothing remote."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from compsec.audit.config import AuditConfig
from compsec.audit.runner import run_audit
from compsec.demo.index import write_index
from compsec.demo.pipeline import _headline, _scan, _survival
from compsec.scan.runner import scan_path

pytestmark = pytest.mark.browser
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]
ADDED = {"tensor": "model.layers.0.self_attn.q_proj.weight", "format": "nf4", "detector": "edge-mass",
         "severity": "suspicious", "score": 9.0, "p_value": 0.0, "explanation": "added by the test fixture"}


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
    """A demo folder with a real (small) audit, a real (few-step) attack with its defence matrix, real scans and a
    real digits survival run.  What the real scan of the few-step attack finds depends on the trained weights (16
    suspicious findings, p < 1e-97, natively on an AVX-512 EPYC: an appended one fell out of the table's first 15
    and the 4 strongest histograms), so one finding with p = 0 is put FIRST: it is then in both whatever the scan
    found (its positions are still computed from the real tensors)."""
    from compsec.attack.config import AttackConfig
    from compsec.attack.pipeline import run_attack
    from compsec.defend.matrix import MatrixConfig, run_matrix

    out = tmp_path_factory.mktemp("demo")
    summary = run_audit(AuditConfig(model=str(tiny_model_dir), out=str(out / "audit-benign"), variants=("int2-rtn",),
                                    probes=("refusal", "over-refusal"), limit=3, max_new_tokens=8,
                                    contrast=False)).summary
    run_attack(AttackConfig(out=str(out / "attack"), model=str(tiny_model_dir), inject_steps=2, repair_steps=2,
                            batch_size=4, ablation=False, probe_limit=2, max_new_tokens=4))
    run_matrix(MatrixConfig(attack_dirs=(str(out / "attack"),), out=str(out / "defence"),
                            defences=("none", "noise-auto"), adaptive_k=None, probe_limit=2, max_new_tokens=4))
    scans = {"benign": _scan(tiny_model_dir, out / "scan-benign.json"),
             "attacked": scan_path(out / "attack" / "model").to_dict()}
    scans["attacked"]["findings"].insert(0, ADDED)
    (out / "scan-attacked.json").write_text(json.dumps(scans["attacked"], default=str))
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
    for anchor in ('id="reports"', 'id="benign"', 'id="attack"', 'id="scan"', 'id="survival"',
                   'id="histograms"', 'id="defence-matrix"'):
        assert anchor in dom
    assert "<th>noise-auto</th>" in dom  # a column of the defence matrix: the fixture asked for it
    for name in ("benign", "attacked"):  # each scan's verdict and its first 15 suspicious findings, as scanned
        scan = json.loads((demo_folder / f"scan-{name}.json").read_text())
        assert f'<span class="{scan["verdict"]}">{scan["verdict"]}</span>' in dom
        shown = [f for f in scan["findings"] if f["severity"] == "suspicious"]
        assert all(f["tensor"] in dom for f in shown[:15])
        assert (f"and {len(shown) - 15} more in scan-{name}.json" in dom) == (len(shown) > 15)
    assert f"<td>{ADDED['explanation']}</td>" in dom  # the table row of the finding the fixture put first
    assert f"positions of {ADDED['tensor']} (nf4)" in dom and f"{ADDED['explanation']}</figcaption>" in dom
    assert 'href="audit-benign/report.html"' in dom
    assert shot.stat().st_size > 10_000
