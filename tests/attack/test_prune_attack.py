"""The pruning-conditioned attack: what its plan guarantees (property tests) and what a run on a micro Llama
delivers (repair only below the threshold, kept weights untouched, compsec's pruner returns the injected model)."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from micro_llama import micro_llama

from compsec.attack.config import AttackConfig
from compsec.attack.pipeline import run_stage
from compsec.attack.prune_plan import PRUNE_TARGETS, PrunePlan, build_plan
from compsec.errors import InputError
from compsec.models.io import load_model, save_model
from compsec.prune.magnitude import layer_mask
from compsec.prune.nm import nm_mask
from compsec.prune.wanda import wanda_masks
from compsec.scan.wanda_gap import wanda_gap_evidence


def _pruner_mask(target: str, w: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    method = PRUNE_TARGETS[target][0]
    if method == "wanda":
        return wanda_masks({"w": w}, {"w": norms}, 0.5)["w"]
    return nm_mask(w) if method == "2:4" else layer_mask(w, 0.5)


@settings(max_examples=60, deadline=None)
@given(target=st.sampled_from(sorted(PRUNE_TARGETS)), rows=st.integers(1, 9), groups=st.integers(1, 6),
       margin=st.floats(0.01, 0.9), seed=st.integers(0, 2**31 - 1))
def test_any_weights_inside_the_plan_get_the_planned_mask(target, rows, groups, margin, seed):
    """Base weights lie inside their plan; ANY weights with kept |w| >= bound and pruned |w| <= (1 - margin)
    bound are pruned by compsec's pruner to exactly the planned mask (the attack's exactness claim)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(rows, 4 * groups, generator=g)
    norms = torch.rand(4 * groups, generator=g) + 0.05
    plan = build_plan({"w": base}, target, margin, {"w": norms})
    keep, bound = plan.keep["w"], plan.bound["w"]
    assert torch.equal(keep, _pruner_mask(target, base, norms))
    ulp = 1e-6  # bound = score / norm is rounded once
    assert bool((base.abs()[keep] >= bound[keep] * (1 - ulp)).all())
    assert bool((base.abs()[~keep] <= bound[~keep] * (1 + ulp)).all())
    other = torch.randn(rows, 4 * groups, generator=g) * 3
    sign = torch.where(other >= 0, 1.0, -1.0)
    moved = torch.where(keep, sign * torch.maximum(other.abs(), bound),
                        torch.clamp(other, -plan.pruned_limit("w"), plan.pruned_limit("w")))
    assert torch.equal(_pruner_mask(target, moved, norms), keep)


def test_plan_round_trip(tmp_path):
    plan = build_plan({"a.weight": torch.randn(3, 8)}, "prune-2:4", 0.2)
    plan.save(tmp_path / "plan")
    again = PrunePlan.load(tmp_path / "plan")
    assert again.target == "prune-2:4" and again.margin == 0.2
    assert torch.equal(again.keep["a.weight"], plan.keep["a.weight"])
    assert torch.equal(again.bound["a.weight"], plan.bound["a.weight"])


@pytest.mark.parametrize("targets", [("prune-magnitude-50", "nf4"), ("prune-30",), ("prune-2:4", "prune-wanda-50")])
def test_config_rejects_mixed_or_unknown_pruning_targets(targets, tmp_path):
    with pytest.raises(InputError, match="exactly one target"):
        AttackConfig(out=str(tmp_path), targets=targets)


def test_config_rejects_options_pruning_cannot_honour(tmp_path):
    with pytest.raises(InputError, match="save-dtype fp32"):
        AttackConfig(out=str(tmp_path), targets=("prune-2:4",), save_dtype="bf16")


@pytest.fixture(scope="module")
def micro_folder(tmp_path_factory):
    model, tokenizer, _ = micro_llama(200, layers=2)
    return save_model(model, tokenizer, tmp_path_factory.mktemp("micro-prune") / "model")


@pytest.mark.parametrize("target", ["prune-magnitude-50", "prune-2:4"])
def test_run_guarantees_on_a_micro_llama(micro_folder, tmp_path, target):
    config = AttackConfig(out=str(tmp_path / "run"), model=str(micro_folder), targets=(target,),
                          inject_steps=4, repair_steps=4, batch_size=4, llmc_verify=False, repair_lr=5e-3)
    for stage in ("plan", "inject", "repair", "verify"):
        record = run_stage(config, stage)
    verify = record["result"]
    assert verify["repair_within_bound"] and verify["kept_equal_injected"]
    ours = verify["pruners"]["compsec"]
    assert ours["pruned_equals_injected"] and ours["mask_identical_share"] == 1.0
    plan = PrunePlan.load(config.folder / "plan")
    dense, _ = load_model(config.folder / "model")
    injected, _ = load_model(config.folder / "injected")
    base, _ = load_model(micro_folder)
    params, sparse, original = (dict(m.named_parameters()) for m in (dense, injected, base))
    repaired = 0
    for name, keep in plan.keep.items():
        assert bool((sparse[name][~keep] == 0).all())  # the injected model is the sparse one
        assert torch.equal(params[name][keep], sparse[name][keep])
        repaired += int((params[name][~keep] != original[name][~keep]).sum())
    assert repaired > 0  # the repair moved pruned weights away from the base model's
    for name, p in params.items():  # nothing outside the prunable weights moved at all
        if name not in plan.keep:
            assert torch.equal(p, original[name])
    assert json.loads((config.folder / "plan" / "plan.json").read_text())["target"] == target


def test_wanda_gap_scan_skips_pruned_tensors_and_passes_a_benign_model(tmp_path):
    """``scan --behaviour``'s Wanda-gap test on a whole model folder (activation norms from the built-in texts)."""
    model, tokenizer, _ = micro_llama(50)
    q = model.model.layers[0].self_attn.q_proj.weight
    with torch.no_grad():
        q.mul_(q.abs() >= q.abs().median(dim=1, keepdim=True).values)  # honestly pruned: half zeros per row
    folder = save_model(model, tokenizer, tmp_path / "m")
    found = wanda_gap_evidence(folder)
    names = {e.tensor for e in found}
    assert found and "model.layers.0.self_attn.q_proj.weight" not in names
    assert not any(e.effect_ok for e in found)


def test_defence_cells_of_a_pruning_row(micro_folder, tmp_path):
    """Quantization defences are marked not applicable; noise-1e-3 measures fp32 and compsec's pruner, whose
    model holds exactly half zeros in every prunable weight (llm-compressor runs only in the ``none`` cell)."""
    from compsec.defend.matrix import MatrixConfig, Row
    from compsec.defend.prune_cells import QUANT_ONLY, _pruned_models, measure_prune_cell
    from compsec.prune.magnitude import prunable_weights

    row = Row("micro:content-injection", "content-injection", ("prune-magnitude-50",), "McDonald's",
              str(micro_folder))
    config = MatrixConfig(attack_dirs=(), out=str(tmp_path / "m"), probe_limit=2, max_new_tokens=4)
    for defence in QUANT_ONLY:
        assert measure_prune_cell(row, defence, config, None)["applicable"] is False
    cell = measure_prune_cell(row, "noise-1e-3", config, None)
    assert cell["applicable"] and set(cell["malicious"]) == {"fp32", "compsec"}
    model, tokenizer = load_model(micro_folder)
    (label, pruned, _), = list(_pruned_models(row, model, tokenizer, "noise-1e-3", config))
    assert label == "compsec"
    assert all(float((w == 0).float().mean()) == 0.5 for w in prunable_weights(pruned).values())
    assert not any(float((w == 0).float().mean()) for w in prunable_weights(model).values())


@pytest.mark.parametrize(("targets", "message"), [("prune-magnitude-50,nf4", "exactly one target"),
                                                  ("prune-70", "exactly one target")])
def test_cli_rejects_bad_pruning_targets_with_exit_2(tmp_path, capsys, targets, message):
    from compsec.cli.main import run

    assert run(["attack", "--out", str(tmp_path / "x"), "--targets", targets]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()
