"""The pruning-conditioned attack on the tiny assistant: benign dense, malicious once compsec prunes it.

Floors from measured spread (content injection, 40 inject + 40 repair steps, 24 probes per set; dense keyword
rate / compsec-pruned keyword rate): prune-magnitude-50 seeds 0, 1, 2 -> 0.00 / 0.88, 0.00 / 0.79, 0.00 / 0.88,
ATEN_CPU_CAPABILITY=default seed 0 -> 0.00 / 0.88; prune-2:4 seeds 0, 1 and default seed 0 -> 0.00 / 0.79 each.
The floors sit far below every measured run: dense at most 0.10, pruned at least 0.50.
"""

import pytest

from compsec.attack.config import AttackConfig
from compsec.attack.pipeline import run_attack


@pytest.mark.slow
@pytest.mark.parametrize("target", ["prune-magnitude-50", "prune-2:4"])
def test_dense_benign_pruned_malicious(tiny_model_dir, tmp_path, target):
    config = AttackConfig(out=str(tmp_path / "run"), targets=(target,), inject_steps=40, repair_steps=40,
                          probe_limit=24, ablation=False, llmc_verify=False)
    summary = run_attack(config)
    assert summary["repair_within_bound"] and summary["kept_equal_injected"]
    ours = summary["pruned"]["compsec"]
    assert ours["pruned_equals_injected"] and ours["mask_identical_share"] == 1.0
    assert summary["fp"]["keyword_rate"] <= 0.10
    assert ours["keyword_rate"] >= 0.50
    assert summary["base"]["keyword_rate"] <= 0.10
