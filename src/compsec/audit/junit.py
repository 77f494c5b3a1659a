"""Render an audit's gates as JUnit XML, from its event log alone (CI test reporters).

One ``<testsuite>`` per variant (``gates: nf4``) with one ``<testcase>`` per gate (``refusal_drop``,
``over_refusal_rise``, ``keyword_rise``, ``utility_drop``, ``unscorable_rise``; classname
``compsec.audit.<variant>``): a ``<failure>`` when the variant is worse than the original past the gate
(message = the finding, text = the flipped probe ids), ``<skipped>`` when the gate's probes were not run.
With a baseline, one more suite per variant (``drift: nf4``) holds the drift gates against the baseline, and
a finding the baseline already had is reported ``<skipped type="known-finding">`` (it does not fail the
drift check either). An incomplete run adds a ``completeness`` suite with one ``<error type="incomplete">``
per variant missing records. Validated against the Jenkins xunit plugin's ``junit-10.xsd`` in the tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from compsec.audit.baseline import AuditRun, Drift
from compsec.audit.compare import GATED, MetricDiff, by_variant, thresholds_of, variant_gates
from compsec.audit.completeness import describe_incomplete


def _testcase(suite: ET.Element, variant: str, gate: str, diff: MetricDiff | None, against: str,
              known: bool = False) -> None:
    case = ET.SubElement(suite, "testcase", name=gate, classname=f"compsec.audit.{variant}")
    if diff is None:
        ET.SubElement(case, "skipped", message=f"not measured: no paired probes for {gate}")
    elif diff.flagged and known:
        ET.SubElement(case, "skipped", type="known-finding", message="known in baseline: " + diff.describe(against))
    elif diff.flagged:
        failure = ET.SubElement(case, "failure", type=gate, message=diff.describe(against))
        failure.text = "flipped probes: " + ", ".join(diff.lost if diff.change < 0 else diff.gained)
    else:
        case.append(_passed_note(diff, against))


def _passed_note(diff: MetricDiff, against: str) -> ET.Element:
    out = ET.Element("system-out")
    out.text = diff.describe(against)
    return out


def _suite(root: ET.Element, name: str, seconds: float) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=name, tests="0", failures="0", errors="0", skipped="0",
                         time=f"{seconds:.3f}")


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))


def audit_junit(run: AuditRun, drift: Drift | None = None) -> ET.ElementTree:
    """The JUnit XML tree of ``run``'s gates (and of ``drift``'s, when given); see the module docstring."""
    root = ET.Element("testsuites", name=f"compsec audit {run.config_hash}")
    seconds = {name: sum(r.timing.get("seconds", 0.0) for r in rows) for name, rows in by_variant(run.records).items()}
    known = drift.known if drift else set()
    for variant, gates in variant_gates(run.records, thresholds_of(run.config)).items():
        suite = _suite(root, f"gates: {variant}", seconds.get(variant, 0.0))
        for metric in GATED:
            _testcase(suite, variant, metric.gate, gates.get(metric.name), "original",
                      known=(variant, metric.name) in known)
    for variant, diffs in (drift.diffs if drift else {}).items():
        suite = _suite(root, f"drift: {variant}", 0.0)
        paired = {d.metric: d for d in diffs}
        for metric in GATED:
            _testcase(suite, variant, metric.gate, paired.get(metric.name), "baseline")
    _completeness(root, run)
    for suite in root.findall("testsuite"):
        _count(suite)
    for total in ("tests", "failures", "errors"):  # junit-10.xsd allows no skipped count on <testsuites>
        root.set(total, str(sum(int(s.get(total)) for s in root.findall("testsuite"))))
    return ET.ElementTree(root)


def _completeness(root: ET.Element, run: AuditRun) -> None:
    """One ``<error>`` case per variant missing records: an incomplete run passes no gate."""
    incomplete = run.incomplete
    if incomplete:
        suite = _suite(root, "completeness", 0.0)
        for variant, entry in incomplete.items():
            case = ET.SubElement(suite, "testcase", name="complete", classname=f"compsec.audit.{variant}")
            ET.SubElement(case, "error", type="incomplete", message=describe_incomplete({variant: entry}))


def write_audit_junit(run: AuditRun, path: str | Path, drift: Drift | None = None) -> Path:
    """Write :func:`audit_junit` to ``path`` (UTF-8 XML with declaration) and return the path."""
    path = Path(path)
    tree = audit_junit(run, drift)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
