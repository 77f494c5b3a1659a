"""Render a :class:`~compsec.scan.findings.ScanReport` as SARIF 2.1.0 (for code-scanning dashboards).

One run, tool driver ``compsec``, one rule per detector; each finding is a result whose physical location is the
checkpoint and whose logical location is the tensor.  Suspicious findings have level ``error``, information
(grid provenance) ``note``.  Model-level facts (verdict, score, formats) go into the run's ``properties``.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec import __version__
from compsec.scan.findings import ScanFinding, ScanReport

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/compsec/compsec"
RULES = {
    "edge-mass": ("BoxEdgeMass", "Weights pressed against the edges of their quantization intervals",
                  ("Too many weights lie within eps of an edge of their preimage interval, compared with a "
                   "grid-aware null: the footprint of projected-gradient repair (quantization-conditioned attack).")),
    "edge-mass-rows": ("BoxEdgeMassRows", "Weights pressed against interval edges in a few rows",
                       ("One row holds far more weights within eps of an interval edge than a grid-aware null "
                        "expects: projected-gradient repair confined to a few rows.")),
    "edge-depletion": ("BoxEdgeDepletion", "Weights kept away from the edges of their quantization intervals",
                       ("Far fewer weights lie within eps of an edge than a grid-aware null expects: the footprint "
                        "of an adaptive attacker repairing inside boxes shrunk away from the edges.")),
    "edge-band": ("BoxEdgeBand", "Weights pushed into the outer parts of their quantization intervals",
                  ("More weights lie in the outer quarter of their interval on either side than a grid-aware null "
                   "expects: the footprint of repair inside randomly shrunk boxes.")),
    "block-outliers": ("BlockOutliers", "Blocks whose abs-max dwarfs the rest of the block",
                       ("Blocks whose largest magnitude is many times the second-largest, so that the rest of "
                        "the block quantizes to zero: the footprint of outlier injection.")),
    "sigma-outliers": ("SigmaOutliers", "Blocks whose abs-max stands many sigma above the block",
                       ("Most 32-weight blocks hold a weight at least 8 robust sigmas above the block's scale: "
                        "outliers placed just under per-group clipping, which still collapse 4-bit blocks "
                        "(adaptive outlier injection).")),
    "widen-gap-ratio": ("WidenGapRatio", "Blocks whose largest weight is several times the second largest",
                        ("Most 32-weight blocks have their largest |w| at least 3x the second largest, far above "
                         "benign weights: block outlier injection ('Widening the Gap' scales the largest weight "
                         "of every block so a block-scaled quantizer collapses the rest).")),
    "nonfinite": ("NonFiniteWeights", "NaN or infinite weights",
                  ("The tensor holds NaN or infinite values: no deployment can quantize or run it faithfully; "
                   "the weights are corrupted or tampered.")),
    "format-refused": ("FormatRefused", "A format cannot quantize this tensor as deployed",
                       ("The format's deployed layer refuses these weights (e.g. LLM.int8 casts to float16 and a "
                        "weight of magnitude >= 65520 overflows to inf): the tensor is not checked for that format, "
                        "and a user who quantizes it that way gets a broken layer.")),
    "grid-provenance": ("GridProvenance", "Weights derived from a quantized checkpoint",
                        ("The weights are exact grid values of a quantization format: the checkpoint was "
                         "converted back from a quantized one. Information, not tampering.")),
}


def rule(rule_id: str, name: str, short: str, full: str, level: str) -> dict:
    """A SARIF ``reportingDescriptor`` (one rule of the tool driver)."""
    return {"id": rule_id, "name": name, "shortDescription": {"text": short},
            "fullDescription": {"text": full}, "defaultConfiguration": {"level": level}}


def sarif_log(rules: list[dict], results: list[dict], properties: dict) -> dict:
    """A SARIF 2.1.0 log holding one run of compsec with ``rules``, ``results`` and run ``properties``."""
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "compsec", "version": __version__, "informationUri": INFORMATION_URI,
                                "rules": rules}},
            "invocations": [{"executionSuccessful": properties.get("verdict") != "not scanned"}],
            "results": results,
            "properties": properties,
        }],
    }


def _rule(rule_id: str, report: ScanReport) -> dict:
    """The rule of ``rule_id``; a detector without a :data:`RULES` entry (the GGUF and pre-quantized scans', the
    pruning tests) is described by its first finding's explanation."""
    level = "note" if rule_id == "grid-provenance" else "error"
    if rule_id in RULES:
        return rule(rule_id, *RULES[rule_id], level)
    explanation = next(f.explanation for f in report.findings if f.detector == rule_id)
    name = "".join(part.capitalize() for part in rule_id.replace(":", "-").split("-"))
    return rule(rule_id, name, f"compsec detector {rule_id}", explanation, level)


def _result(finding: ScanFinding, path: str, rule_index: int) -> dict:
    properties = {"format": finding.format, "score": finding.score, "severity": finding.severity}
    if finding.p_value is not None:
        properties["pValueAdjusted"] = finding.p_value
    return {
        "ruleId": finding.detector,
        "ruleIndex": rule_index,
        "level": "error" if finding.severity == "suspicious" else "note",
        "message": {"text": f"{finding.tensor} [{finding.format}]: {finding.explanation}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": Path(path).as_posix()}},
                       "logicalLocations": [{"name": finding.tensor, "kind": "variable"}]}],
        "properties": properties,
    }


def to_sarif(report: ScanReport) -> dict:
    """The SARIF 2.1.0 log of ``report`` as a JSON-ready dict."""
    rule_ids = list(RULES) + list(dict.fromkeys(f.detector for f in report.findings if f.detector not in RULES))
    return sarif_log(
        [_rule(rule_id, report) for rule_id in rule_ids],
        [_result(f, report.path, rule_ids.index(f.detector)) for f in report.findings],
        {"verdict": report.verdict, "score": report.score, "formatsChecked": report.formats_checked,
         "paramsScanned": report.params_scanned, "weightsExamined": report.weights_examined,
         "sampleSeed": report.sample_seed, "missProbability": report.miss_probability, "skipped": report.skipped,
         "seconds": report.seconds},
    )


def write_sarif(report: ScanReport, path: str | Path) -> Path:
    """Write :func:`to_sarif` of ``report`` to ``path`` (UTF-8 JSON) and return the path."""
    path = Path(path)
    path.write_text(json.dumps(to_sarif(report), indent=2), encoding="utf-8")
    return path
