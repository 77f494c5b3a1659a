"""``compsec scan --behaviour``: the Monte-Carlo rank test stays quiet on the benign tiny assistant and flags a
model whose weights were pushed to their nf4 box edges (same codes, full precision moved a step away)."""

from __future__ import annotations

import pytest
import torch

from compsec import formats
from compsec.attack.box import constrained_names
from compsec.models.io import load_model, save_model
from compsec.scan.behaviour import _p_value, behaviour_evidence, behaviour_findings
from compsec.scan.config import ScanConfig
from compsec.scan.runner import scan_path


def _edge_pushed(tiny_model_dir, folder):
    model, tokenizer = load_model(tiny_model_dir)
    fmt = formats.get("nf4")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in constrained_names(model, [fmt]):
            params[name].copy_(fmt.preimage(params[name].detach()).hi)
    return save_model(model, tokenizer, folder)


def test_sequential_p_value_stops_early_and_is_exact_otherwise():
    draws = iter([0.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    p, seen = _p_value(1.0, lambda: next(draws), 19)
    assert p == 5 / 6 and len(seen) == 6  # stopped at the fifth draw reaching KL_0
    p, seen = _p_value(10.0, lambda: 0.1, 19)
    assert p == 1 / 20 and len(seen) == 19


@pytest.mark.behaviour
def test_benign_model_is_quiet_and_edge_pushed_model_is_flagged(tiny_model_dir, tmp_path):
    benign = behaviour_findings(behaviour_evidence(tiny_model_dir, ["nf4"], texts=8))
    assert [f.severity for f in benign] == ["info"] and benign[0].p_value > 0.2
    pushed = behaviour_findings(behaviour_evidence(_edge_pushed(tiny_model_dir, tmp_path / "pushed"), ["nf4"],
                                                   texts=8))
    assert [f.severity for f in pushed] == ["suspicious"] and pushed[0].score >= 2


@pytest.mark.behaviour
def test_scan_with_behaviour_reports_every_format(tiny_model_dir):
    report = scan_path(tiny_model_dir, ScanConfig(formats=("nf4", "int8"), behaviour=True))
    behaviour = [f for f in report.findings if f.detector == "behaviour"]
    assert sorted(f.format for f in behaviour) == ["int8", "nf4"] and report.verdict == "clean"
