"""The top finding names the mechanism: on a tensor with block outliers, the interval statistics' findings (a
side effect of the outliers' block scales) rank after the block-outlier finding and say so; nothing else moves."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file

from compsec.attack.widen_gap import widen_gap
from compsec.scan import ScanConfig, scan_path, synthetic
from compsec.scan.aggregate import INTERVAL_DETECTORS, OUTLIER_DETECTORS, SIDE_EFFECT_NOTE, decide
from compsec.scan.findings import Evidence

WIDENED, OTHER = "model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight"


def _evidence(tensor, detector, score, p=0.0):
    return Evidence(tensor, "q4_0", detector, score, p, True, f"{detector} on {tensor}")


def test_interval_findings_of_an_outlier_tensor_rank_last_and_say_why():
    records = [_evidence(WIDENED, "edge-depletion", 5080.0), _evidence(WIDENED, "block-outliers", 1.0),
               _evidence(OTHER, "edge-band", 1.5, 1e-9), _evidence(OTHER, "edge-mass", 3.0)]
    findings, score = decide(records, 1e-3)
    assert [(f.tensor, f.detector) for f in findings] == [
        (OTHER, "edge-mass"), (WIDENED, "block-outliers"), (OTHER, "edge-band"), (WIDENED, "edge-depletion")]
    assert findings[-1].explanation.endswith(SIDE_EFFECT_NOTE) and findings[-1].severity == "suspicious"
    assert not any(SIDE_EFFECT_NOTE in f.explanation for f in findings[:-1])
    unranked, same_score = decide([r for r in records if r.detector != "block-outliers"], 1e-3)
    assert same_score == score == 300.0 and [f.detector for f in unranked] == ["edge-depletion", "edge-mass",
                                                                                  "edge-band"]


def test_a_widened_tensor_is_reported_first_as_outlier_injection(tmp_path):
    """The tiny assistant's up_proj shape: without the ranking, edge-depletion (score 5080) came first."""
    gen = torch.Generator().manual_seed(4)
    tensors = {n: synthetic.benign((512, 256), "gaussian", torch.float32, gen) for n in (WIDENED, OTHER)}
    tensors[WIDENED] = widen_gap(tensors[WIDENED], gen)[0]
    tmp_path.joinpath("config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    save_file(tensors, str(tmp_path / "model.safetensors"))
    report = scan_path(tmp_path, ScanConfig(formats=("nf4", "q4_0")))
    assert report.verdict == "suspicious" and {f.tensor for f in report.suspicious} == {WIDENED}
    assert report.suspicious[0].detector in OUTLIER_DETECTORS
    assert "block-outliers" in {f.detector for f in report.suspicious}
    interval = [f for f in report.suspicious if f.detector in INTERVAL_DETECTORS]
    assert interval and all(f.explanation.endswith(SIDE_EFFECT_NOTE) for f in interval)
