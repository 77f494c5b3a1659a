"""``compsec prune`` / ``compsec heads`` end to end on the tiny assistant, and the prune-* audit variants."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.variants import resolve_variant
from compsec.cli.main import run
from compsec.integrity.provenance import SIDECAR_NAME
from compsec.models.io import load_model
from compsec.prune.magnitude import prunable_weights, sparsity_of
from compsec.prune.variants import PruneVariant


def test_specs_resolve():
    assert resolve_variant("prune-50") == PruneVariant("prune-50", "magnitude-global", 0.5)
    assert resolve_variant("prune-layer-30") == PruneVariant("prune-layer-30", "magnitude-layer", 0.3)
    assert resolve_variant("prune-2:4") == PruneVariant("prune-2:4", "2:4", 0.5)


def test_variant_prunes_then_restores_exactly(tiny_assistant):
    model, tokenizer = copy.deepcopy(tiny_assistant[0]), tiny_assistant[1]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    context = AuditContext(AuditConfig(model="unused"), model, tokenizer)
    for spec, target in [("prune-70", 0.7), ("prune-2:4", 0.5)]:
        with resolve_variant(spec).open(context) as backend:
            assert sparsity_of(prunable_weights(backend.model)) == pytest.approx(target, abs=1e-3)
        assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_prune_cli_writes_loadable_folder_with_provenance(tiny_model_dir, tmp_path):
    out = tmp_path / "pruned"
    assert run(["prune", str(tiny_model_dir), "--method", "magnitude-layer", "--sparsity", "0.3",
                "--out", str(out)]) == 0
    model, tokenizer = load_model(out)
    assert tokenizer is not None
    assert sparsity_of(prunable_weights(model)) == pytest.approx(0.3, abs=1e-3)
    record = json.loads((out / SIDECAR_NAME).read_text())
    assert record["operation"] == "prune" and record["parameters"]["method"] == "magnitude-layer"
    assert run(["prune", str(tiny_model_dir), "--method", "bogus", "--out", str(tmp_path / "x")]) == 2


def test_heads_cli_ranks_and_prune_protects(tiny_model_dir, tmp_path, capsys):
    ranking_file = tmp_path / "heads.json"
    assert run(["heads", str(tiny_model_dir), "--limit", "4", "--max-new-tokens", "6",
                "--min-drop", "0.0", "--out", str(ranking_file)]) == 0
    ranking = json.loads(ranking_file.read_text())
    assert len(ranking["heads"]) == 8 and ranking["probes"] == 4
    drops = [row["refusal_drop"] for row in ranking["heads"]]
    assert drops == sorted(drops, reverse=True)
    assert all(abs(row["baseline"] - row["refusal_rate"] - row["refusal_drop"]) < 1e-9
               for row in [{**r, "baseline": ranking["baseline"]} for r in ranking["heads"]])
    assert {tuple(h) for h in ranking["critical"]} == {(r["layer"], r["head"]) for r in ranking["heads"]
                                                       if r["refusal_drop"] >= 0.0}
    protected = {(r["layer"], r["head"]) for r in ranking["heads"] if r["refusal_drop"] >= 0.05}
    out = tmp_path / "heads-pruned"
    assert run(["prune", str(tiny_model_dir), "--method", "heads", "--sparsity", "0.25", "--protect",
                str(ranking_file), "--min-drop", "0.05", "--out", str(out)]) == 0
    removed = {tuple(h) for h in json.loads((out / SIDECAR_NAME).read_text())["parameters"]["heads_removed"]}
    assert len(removed) == 2 and not removed & protected
