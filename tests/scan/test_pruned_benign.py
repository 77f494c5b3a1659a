"""An honestly pruned model is not tampering: its exact zeros sit on a code and carry no edge fingerprint.

Before zeros were left out of the edge tallies, a 50 % magnitude-pruned tiny assistant scanned *suspicious*
(score 300: edge-depletion, edge-mass, position-spike, edge-band on all 14 tensors) and a 2:4-pruned one also
fired ``pruning-2:4-gap`` (its zeros are every group's two smallest).  The attacked counterparts stay flagged
(``tests/attack/test_prune_attack.py``).
"""

from __future__ import annotations

import json

import pytest

from compsec.cli.main import run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method", ["magnitude-layer", "2:4"])
def test_a_benign_pruned_model_scans_clean(tmp_path, tiny_model_dir, method):
    pruned = tmp_path / "pruned"
    assert run(["prune", str(tiny_model_dir), "--method", method, "--out", str(pruned)]) == 0
    report = tmp_path / "scan.json"
    code = run(["scan", str(pruned), "--no-progress", "--json", str(report)])
    document = json.loads(report.read_text())
    assert code == 0, [f["detector"] for f in document["findings"]]
    assert document["verdict"] == "clean"
    assert document["weights_examined"] == document["params_scanned"]
