"""Render an audit's findings as SARIF 2.1.0, from its event log alone (code-scanning dashboards, CI).

One rule per gate (``degradation/refusal-drop``, ...: a variant worse than the original) and, when a baseline
is given, one per drift gate (``drift/refusal-drop``, ...: the run worse than the baseline). Each failing
gate is a result of level ``error`` whose physical location is the audited model (the path as given to
``compsec audit``) and whose logical location is the variant; ``properties`` carry the rates, the exact
McNemar p-value, the number of paired probes and the flipped probe ids. With a baseline, every result says
whether it is ``new`` or ``unchanged`` (``baselineState``): findings the baseline already had are unchanged.
An incomplete run's properties say which variants miss how many prompts (``incomplete``).
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.audit.baseline import AuditRun, Drift
from compsec.audit.compare import GATED, MetricDiff, thresholds_of, variant_gates
from compsec.scan.sarif import rule, sarif_log

MAX_IDS = 50


def _rule_id(kind: str, gate: str) -> str:
    return f"{kind}/{gate.replace('_', '-')}"


def _rules() -> list[dict]:
    rules = []
    for metric in GATED:
        direction = "fell" if metric.worse < 0 else "rose"
        rules.append(rule(_rule_id("degradation", metric.gate), f"Variant{metric.name.title().replace('_', '')}",
                          f"A compressed variant's {metric.label} {direction} against the original",
                          f"The {metric.label} of a variant {direction} past the '{metric.gate}' threshold "
                          "on the same probes as the original, with a significant exact McNemar test on the "
                          "per-probe flips.", "error"))
        rules.append(rule(_rule_id("drift", metric.gate), f"Drift{metric.name.title().replace('_', '')}",
                          f"The {metric.label} {direction} against the stored baseline run",
                          f"The {metric.label} of a variant {direction} past the '{metric.gate}' threshold "
                          "against the same variant in the baseline run (paired probes, exact McNemar).",
                          "error"))
    return rules


def _result(rules: list[dict], kind: str, variant: str, diff: MetricDiff, model: str, against: str) -> dict:
    rule_id = _rule_id(kind, diff.gate)
    return {
        "ruleId": rule_id,
        "ruleIndex": next(i for i, r in enumerate(rules) if r["id"] == rule_id),
        "level": "error",
        "message": {"text": f"{variant}: {diff.describe(against)}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": Path(model).as_posix()}},
                       "logicalLocations": [{"name": variant, "kind": "module"}]}],
        "properties": {"variant": variant, "metric": diff.metric, "gate": diff.gate, "threshold": diff.threshold,
                       "rateBefore": diff.rate_a, "rateAfter": diff.rate_b, "change": diff.change,
                       "pValue": diff.p_value, "paired": diff.paired,
                       "flipsWorse": _worse_flips(diff)[:MAX_IDS]},
    }


def _worse_flips(diff: MetricDiff) -> list[str]:
    return diff.lost if diff.change < 0 else diff.gained


def audit_sarif(run: AuditRun, drift: Drift | None = None) -> dict:
    """The SARIF 2.1.0 log of ``run``'s failing gates (and of ``drift``'s, when given) as a JSON-ready dict."""
    rules, model = _rules(), str(run.config.get("model", run.folder))
    results = []
    known = drift.known if drift else set()
    for variant, gates in variant_gates(run.records, thresholds_of(run.config)).items():
        for diff in (d for d in gates.values() if d.flagged):
            result = _result(rules, "degradation", variant, diff, model, "original")
            if drift:
                result["baselineState"] = "unchanged" if (variant, diff.metric) in known else "new"
            results.append(result)
    for variant, diffs in (drift.diffs if drift else {}).items():
        for diff in (d for d in diffs if d.flagged):
            results.append({**_result(rules, "drift", variant, diff, model, "baseline"), "baselineState": "new"})
    properties = {"configHash": run.config_hash, "model": model, "auditFolder": str(run.folder)}
    if run.incomplete:  # no gate passes on a partial measurement: say which variants miss what
        properties["incomplete"] = {name: {"missing": e["missing"], "expected": e["expected"]}
                                    for name, e in run.incomplete.items()}
    if drift:
        properties["baseline"] = {"folder": str(drift.baseline.folder), "configHash": drift.baseline.config_hash}
    return sarif_log(rules, results, properties)


def write_audit_sarif(run: AuditRun, path: str | Path, drift: Drift | None = None) -> Path:
    """Write :func:`audit_sarif` to ``path`` (UTF-8 JSON) and return the path."""
    path = Path(path)
    path.write_text(json.dumps(audit_sarif(run, drift), indent=2), encoding="utf-8")
    return path
