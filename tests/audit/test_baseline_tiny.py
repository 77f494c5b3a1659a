"""End to end on the tiny assistant: an identical rerun passes the drift gate, a 90 %-pruned model fails it."""

import copy
import json

import pytest

from compsec.audit import AuditConfig, run_audit
from compsec.audit.baseline import check_drift
from compsec.cli.main import run
from compsec.prune.model import prune_model

SETTINGS = {"variants": (), "probes": ("refusal", "utility"), "limit": 12, "max_new_tokens": 8, "contrast": False}


@pytest.mark.behaviour
@pytest.mark.slow
def test_rerun_passes_and_pruned_model_drifts(tiny_assistant, tiny_model_dir, tmp_path, capsys):
    model, tokenizer = tiny_assistant
    base = tmp_path / "base"
    run_audit(AuditConfig(model=str(tiny_model_dir), out=str(base), **SETTINGS), model=model, tokenizer=tokenizer)
    rerun = ["audit", str(tiny_model_dir), "--variants", "", "--probes", "refusal,utility", "--limit", "12",
             "--max-new-tokens", "8", "--no-contrast", "--out", str(tmp_path / "rerun"),
             "--baseline", str(base / "summary.json"), "--sarif", str(tmp_path / "a.sarif"),
             "--junit", str(tmp_path / "a.xml")]
    assert run(rerun) == 0
    assert "drift gate passed" in capsys.readouterr().out
    assert json.loads((tmp_path / "a.sarif").read_text())["runs"][0]["results"] == []
    assert 'failures="0"' in (tmp_path / "a.xml").read_text()

    pruned = copy.deepcopy(model)
    prune_model(pruned, "magnitude-global", 0.9)
    worse = tmp_path / "pruned"
    run_audit(AuditConfig(model=str(tiny_model_dir), out=str(worse), **SETTINGS), model=pruned, tokenizer=tokenizer)
    drift = check_drift(base, worse)
    utility = next(d for d in drift.diffs["original"] if d.metric == "utility_accuracy")
    assert utility.flagged and utility.p_value < 0.05 and len(utility.lost) >= 6, utility.describe("baseline")
    assert run(["report", str(worse), "--baseline", str(base), "--sarif", str(tmp_path / "b.sarif")]) == 1
    assert "drift original: utility accuracy fell" in capsys.readouterr().out
    results = json.loads((tmp_path / "b.sarif").read_text())["runs"][0]["results"]
    assert "drift/utility-drop" in {r["ruleId"] for r in results}
