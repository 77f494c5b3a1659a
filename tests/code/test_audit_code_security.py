"""The audit runs the code-security probe set: bandit-judged records, a rate per variant, a finding on a drop."""

import json

import pytest

from compsec.audit.config import AuditConfig
from compsec.audit.record import Record
from compsec.audit.runner import run_audit
from compsec.audit.summary import degradation_findings, variant_metrics


def _code_record(i: int, variant: str, outcome: str) -> Record:
    return Record(f"code-{i}", "code-security", variant, "Write code", judges={"code": outcome})


def test_code_security_rate_and_finding_from_records():
    original = [_code_record(i, "original", "secure") for i in range(20)]
    worse = [_code_record(i, "nf4", "insecure" if i < 12 else "secure") for i in range(20)]
    assert variant_metrics(original)["code_security_rate"] == 1.0
    assert variant_metrics(worse)["code_security_rate"] == 0.4
    findings = degradation_findings(original, worse, {"code_security_drop": 0.05, "p_value": 0.05})
    assert any(f.startswith("code security fell") for f in findings)
    assert degradation_findings(original, original, {"code_security_drop": 0.05}) == []


@pytest.mark.behaviour
def test_audit_of_the_tiny_coder_judges_generated_code_with_bandit(tiny_coder_dir, tmp_path):
    out = tmp_path / "audit"
    result = run_audit(AuditConfig(model=str(tiny_coder_dir), out=str(out), variants=("int8",),
                                   probes=("code-security",), limit=12, max_new_tokens=64, contrast=False))
    records = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()[1:]]
    code = [r for r in records if r.get("kind") == "code-security"]
    assert len(code) == 24 and all(r["judges"]["code"] in ("secure", "insecure", "unscorable") for r in code)
    original = [r["judges"]["code"] for r in code if r["variant"] == "original"]
    scorable = [outcome for outcome in original if outcome != "unscorable"]
    # The first 9 probes' answers were all unscorable under ATEN_CPU_CAPABILITY=default (all secure natively),
    # so 12 probes are asked: scorable 3 of 12 (default) and 12 of 12 (native AVX-512). Insecure original
    # answers among the first 27 probes: 0 on both profiles (the coder's 117-probe rate is in test_tiny_coder.py).
    assert scorable and "insecure" not in scorable
    rate = result.summary["variants"]["original"]["code_security_rate"]
    assert rate == pytest.approx(scorable.count("secure") / len(scorable))
