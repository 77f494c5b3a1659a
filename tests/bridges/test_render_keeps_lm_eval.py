"""Re-rendering an audit from its event log keeps the lm-eval bridge's scores in summary.json."""

import json

from compsec.audit.config import AuditConfig
from compsec.audit.runner import render, run_audit
from compsec.bridges.lm_eval_scores import write_results


def test_render_reattaches_lm_eval_scores(tiny_model_dir, tmp_path):
    out = tmp_path / "audit"
    run_audit(AuditConfig(model=str(tiny_model_dir), out=str(out), variants=("int8",), probes=("utility",), limit=2,
                          contrast=False))
    payload = {"tasks": ["compsec_utility_mc"], "variants": {"original": {"acc": 0.5}}, "seconds": {"original": 1}}
    write_results(out, payload)
    assert json.loads((out / "summary.json").read_text())["lm_eval"]["variants"] == payload["variants"]
    render(out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lm_eval"] == {"tasks": ["compsec_utility_mc"], "variants": {"original": {"acc": 0.5}}}
    (out / "lm_eval.json").unlink()
    render(out)
    assert "lm_eval" not in json.loads((out / "summary.json").read_text())
