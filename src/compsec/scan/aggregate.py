"""From many per-tensor tests to one verdict, with multiple-testing control.

A model has hundreds of quantizable tensors and every one is tested for several formats, so a per-test p-value
threshold would raise false alarms on clean models.  All tamper tests of a scan (edge-mass, edge-depletion,
edge-band and block-outlier, every tensor and format) are pooled and adjusted with **Benjamini-Hochberg** (false
discovery rate ``alpha``, default 1e-3).  BH is valid under independence and under positive dependence (PRDS),
which is the relevant case here: tests of one tensor under different formats are positively correlated.  A
test becomes a *suspicious* finding only when its adjusted p-value is ``<= alpha`` **and** its detector's
effect-size floor is met.

Model ``score``: the strongest evidence, ``max -log10(adjusted p)`` over tests whose effect floor is met,
capped at 300 (0 when there is none).  ``verdict`` is ``"suspicious"`` iff any suspicious finding exists.

Order: by adjusted p, then score, except that the interval-statistic findings (edge-mass, edge-depletion,
edge-band, position-spike) of a tensor that also has a block-outlier finding come after every other finding,
their explanation saying so: outliers that set each block's scale push the rest of the block deep inside the
zero code's interval, which the interval statistics then read as box repair (measured on "Widening the Gap":
edge-depletion scored 5080 and ranked above block-outliers).  The top finding then names outlier injection.
Verdict, score and severities are unchanged.
"""

from __future__ import annotations

import math
from dataclasses import replace

from compsec.scan.findings import Evidence, ScanFinding

MAX_SCORE = 300.0
OUTLIER_DETECTORS = ("block-outliers", "sigma-outliers", "widen-gap-ratio", "collapsed-blocks", "outlier-blocks")
INTERVAL_DETECTORS = ("edge-mass", "edge-mass-rows", "edge-depletion", "edge-band", "position-spike")
SIDE_EFFECT_NOTE = ("[likely a side effect of the block outliers found in this tensor: an outlier that sets its "
                    "block's scale leaves the other weights deep inside the zero code's interval]")


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values (step-up, monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted


def decide(records: list[Evidence], alpha: float) -> tuple[list[ScanFinding], float]:
    """Suspicious findings (sorted by adjusted p) and the model score from all tamper tests."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be in (0, 1); 1e-3 is the default false discovery rate")
    testable = [r for r in records if r.p_value is not None]
    adjusted = benjamini_hochberg([r.p_value for r in testable])
    findings, score = [], 0.0
    for record, p_adj in zip(testable, adjusted):
        if not record.effect_ok:
            continue
        score = max(score, min(MAX_SCORE, -math.log10(max(p_adj, 1e-300))))
        if p_adj <= alpha:
            findings.append(ScanFinding(record.tensor, record.format, record.detector, record.score, p_adj,
                                        record.explanation))
    return rank_by_mechanism(findings), score


def rank_by_mechanism(findings: list[ScanFinding]) -> list[ScanFinding]:
    """``findings`` by (adjusted p, -score), a block-outlier tensor's interval findings last and annotated."""
    outlier_tensors = {f.tensor for f in findings if f.detector in OUTLIER_DETECTORS}
    ranked = []
    for f in findings:
        side_effect = f.tensor in outlier_tensors and f.detector in INTERVAL_DETECTORS
        ranked.append((side_effect, replace(f, explanation=f"{f.explanation} {SIDE_EFFECT_NOTE}") if side_effect else f))
    ranked.sort(key=lambda pair: (pair[0], pair[1].p_value, -pair[1].score))
    return [f for _, f in ranked]
