"""The two adaptive attackers end to end on a micro attack: k-sigma shrink (vs noise) and fractional shrink (vs
the edge scanner) both keep the injected codes and stay inside their shrunk boxes."""

from __future__ import annotations

import json

import pytest

from compsec.attack.adaptive_shrink import shrink_attack
from compsec.attack.config import AttackConfig
from compsec.attack.pipeline import run_attack
from compsec.defend.adaptive import adaptive_attack


@pytest.fixture(scope="module")
def micro_attack(micro_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("adaptive") / "attack"
    run_attack(AttackConfig(out=str(out), model=str(micro_dir), inject_steps=2, repair_steps=2, batch_size=4,
                            ablation=False, probe_limit=2, max_new_tokens=2))
    return out


def test_k_sigma_adaptive_attack_keeps_the_codes(micro_attack, tmp_path):
    model_dir = adaptive_attack(micro_attack, tmp_path, k=3.0, steps=2)
    record = json.loads((model_dir.parent / "adaptive.json").read_text())
    assert record["requantization_identical"] == {"nf4": True} and record["inside_box"]
    assert record["median_margin"] > 0 and record["train"]["steps"] == 2
    assert adaptive_attack(micro_attack, tmp_path, k=3.0, steps=2) == model_dir  # reused, not re-run


@pytest.mark.parametrize("randomized", [False, True])
def test_fractional_shrink_attack_keeps_the_codes(micro_attack, tmp_path, randomized):
    model_dir = shrink_attack(micro_attack, tmp_path, 0.1, steps=2, probe_limit=2, randomized=randomized)
    record = json.loads((model_dir.parent / "shrink.json").read_text())
    assert record["requantization_identical"] == {"nf4": True} and record["inside_box"]
    assert record["randomized"] is randomized and set(record["keyword_rate"]) == {"fp32", "nf4"}
