"""widen-gap-ratio on what users download: a bitsandbytes LLM.int8 folder written by transformers from a model
with outliers only x4 in every 32-weight block (LLM.int8's per-row scale collapses nothing there, so the
collapsed-blocks test cannot see it) is flagged on the injected tensors only; benign int8 / nf4 folders are not."""

from __future__ import annotations

import pytest
from test_prequantized_scan import TARGETS, serialize, tiny_llama

from compsec.scan.prequantized_scan import dominated_blocks
from compsec.scan.runner import scan_path


@pytest.fixture(scope="module")
def factor4(tmp_path_factory):
    root = tmp_path_factory.mktemp("factor4")
    sources = {"benign": tiny_llama(root / "src-benign"), "x4": tiny_llama(root / "src-x4", 1.0, factor=4.0)}
    return {(label, kind): serialize(src, root / f"{label}-{kind}", kind)
            for label, src in sources.items() for kind in ("int8", "nf4")}


def test_outliers_x4_in_an_llm_int8_folder_are_flagged_as_widening_the_gap(factor4):
    from compsec.scan.prequantized_read import bnb_weights

    weights = {q.name: q.weight for q in bnb_weights(factor4["x4", "int8"])}
    dominated = [dominated_blocks(weights[t]) for t in TARGETS]  # the collapsed-blocks test (8x) misses x4
    assert all(d / live < 0.2 for d, live in dominated), dominated
    report = scan_path(factor4["x4", "int8"])
    assert report.verdict == "suspicious"
    assert {(f.tensor, f.detector) for f in report.findings} == {(t, "widen-gap-ratio") for t in TARGETS}
    assert all(f.score > 0.95 and "Widening the Gap" in f.explanation for f in report.findings)


def test_outliers_x4_in_an_nf4_folder_are_flagged_on_the_injected_tensors(factor4):
    report = scan_path(factor4["x4", "nf4"])
    assert {f.tensor for f in report.findings} == set(TARGETS)
    assert "widen-gap-ratio" in {f.detector for f in report.findings}


@pytest.mark.parametrize("kind", ["int8", "nf4"])
def test_benign_folders_have_no_gap_ratio_evidence_near_the_floor(factor4, kind):
    from compsec.scan.prequantized_scan import prequantized_evidence

    evidence = prequantized_evidence(factor4["benign", kind], "bitsandbytes")[0]
    gaps = [e for e in evidence if e.detector == "widen-gap-ratio"]
    assert len(gaps) == 7 and max(e.score for e in gaps) < 0.05 and not any(e.effect_ok for e in gaps)
    assert scan_path(factor4["benign", kind]).verdict == "clean"


def test_the_sarif_log_of_a_flagged_folder_has_a_rule_for_every_finding(factor4, tmp_path):
    import json

    from compsec.cli.main import run

    out = tmp_path / "r.sarif"
    assert run(["scan", str(factor4["x4", "nf4"]), "--no-progress", "--sarif", str(out)]) == 1
    (run_,) = json.loads(out.read_text())["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert {r["ruleId"] for r in run_["results"]} >= {"widen-gap-ratio", "collapsed-blocks"}
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in run_["results"])
