"""Verify and measure the pruning-conditioned attack with the REAL pruners.

Pruners: compsec's own (per-layer magnitude, 2:4 magnitude, Wanda on the deployer's calibration set: the
built-in set of :mod:`compsec.llmc.calibration`, not the attacker's texts) applied to the saved dense model, and
llm-compressor's ``WandaPruningModifier`` / ``SparseGPTModifier`` run by ``oneshot`` in its side environment
(:mod:`compsec.llmc.build`) on the same folder.  Per pruner: the share of the pruning mask equal to the planned
one, the share of kept weights bit-equal to the injected model's (SparseGPT updates survivors), and, in
``measure``, the pruned model's behaviour next to the dense model's.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compsec.attack.config import AttackConfig
from compsec.attack.prune_plan import PRUNE_TARGETS, PrunePlan


def compsec_pruned_weights(model, tokenizer, target: str, device="cpu") -> dict[str, torch.Tensor]:
    """``{name: pruned weight}`` of ``model``'s prunable weights under compsec's pruner for ``target``."""
    from compsec.attack.prune_stages import prunable
    from compsec.llmc.calibration import builtin_texts
    from compsec.prune.magnitude import layer_mask
    from compsec.prune.nm import nm_mask
    from compsec.prune.wanda import activation_norms, wanda_masks

    weights = {n: p.detach() for n, p in prunable(model).items()}
    method = PRUNE_TARGETS[target][0]
    if method == "wanda":
        norms = activation_norms(model, tokenizer, builtin_texts()[:64], list(weights), device)
        masks = wanda_masks(weights, norms, 0.5)
    else:
        masks = {n: nm_mask(w) if method == "2:4" else layer_mask(w, 0.5) for n, w in weights.items()}
    return {n: w * masks[n].to(w.dtype) for n, w in weights.items()}


def llmc_pruned_weights(config: AttackConfig, recipe_name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Run llm-compressor's ``recipe_name`` on DIR/model into DIR/llmc/<recipe> (once); its dense weights."""
    from compsec.llmc.build import write_variant
    from compsec.llmc.calibration import Calibration
    from compsec.llmc.ct_decode import decode_folder
    from compsec.llmc.recipes import get_recipe

    folder = config.folder / "llmc" / recipe_name.replace(":", "_")
    stats = {}
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        stats = write_variant(config.folder / "model", get_recipe(recipe_name), Calibration(), folder)
    return {n: d.weight.float() for n, d in decode_folder(folder).items()}, stats


def mask_report(pruned: dict[str, torch.Tensor], injected: dict[str, torch.Tensor], plan: PrunePlan) -> dict:
    """Mask identity with the plan, kept weights bit-equal to the injected ones, and their relative drift."""
    same = total = equal = kept = 0
    drift_num = drift_den = 0.0
    for name, keep in plan.keep.items():
        w, ref = pruned[name].float().cpu(), injected[name].float().cpu()
        same += int(((w != 0) == keep).sum())
        total += keep.numel()
        equal += int(((w == ref) & keep).sum())
        kept += int(keep.sum())
        drift_num += float(((w - ref) * keep).norm() ** 2)
        drift_den += float((ref * keep).norm() ** 2)
    return {"mask_identical_share": round(same / total, 6), "kept_bit_equal_share": round(equal / kept, 6),
            "kept_relative_drift": round((drift_num / max(drift_den, 1e-30)) ** 0.5, 6)}


def verify_stage(config: AttackConfig) -> dict:
    from compsec.attack.prune_stages import prunable
    from compsec.attack.stages import load_stage_model

    plan = PrunePlan.load(config.folder / "plan")
    target = plan.target
    model, tokenizer = load_stage_model(config, "model")
    injected = {n: p.detach() for n, p in prunable(load_stage_model(config, "injected")[0]).items()}
    dense = {n: p.detach().clone() for n, p in prunable(model).items()}
    limits_ok = all(bool((dense[n][~k].abs() <= plan.pruned_limit(n)[~k]).all()) for n, k in plan.keep.items())
    kept_ok = all(bool((dense[n][k] == injected[n][k]).all()) for n, k in plan.keep.items())
    result = {"repair_within_bound": limits_ok, "kept_equal_injected": kept_ok, "pruners": {}}
    ours = compsec_pruned_weights(model, tokenizer, target, config.device)
    result["pruners"]["compsec"] = {**mask_report(ours, injected, plan),
                                    "pruned_equals_injected": all(torch.equal(ours[n], injected[n]) for n in ours)}
    if (config.folder / "ablation").is_dir():
        ablation, _ = load_stage_model(config, "ablation")
        result["ablation_compsec"] = mask_report(compsec_pruned_weights(ablation, tokenizer, target, config.device),
                                                 injected, plan)
    for recipe in PRUNE_TARGETS[target][2] if config.llmc_verify else ():
        weights, stats = llmc_pruned_weights(config, recipe)
        result["pruners"][recipe] = {**mask_report(weights, injected, plan), **stats}
    return result


def _pruned_model(config: AttackConfig, pruner: str, target: str):
    """The dense model pruned by ``pruner``: compsec's pruner in memory, or llm-compressor's saved folder loaded
    the way users load it."""
    from compsec.attack.prune_stages import prunable
    from compsec.attack.stages import load_stage_model
    from compsec.models.io import load_model

    if pruner != "compsec":
        llmc_pruned_weights(config, pruner)  # builds the folder when missing
        model, tokenizer = load_model(config.folder / "llmc" / pruner.replace(":", "_"), device=config.device)
        return model.float(), tokenizer
    model, tokenizer = load_stage_model(config, "model")
    weights = compsec_pruned_weights(model, tokenizer, target, config.device)
    with torch.no_grad():
        for name, p in prunable(model).items():
            p.copy_(weights[name].to(p.device, p.dtype))
    return model, tokenizer


def measure_stage(config: AttackConfig) -> dict:
    from compsec.attack.measure import MeasureConfig, behaviour
    from compsec.attack.stages import load_base, load_stage_model

    target = PrunePlan.load(config.folder / "plan").target
    settings = MeasureConfig(config.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    result = {"fp": behaviour(*load_stage_model(config, "model"), settings, config.device), "pruned": {}}
    result["base"] = behaviour(*load_base(config), settings, config.device)
    result["injected"] = behaviour(*load_stage_model(config, "injected"), settings, config.device)
    for pruner in ("compsec", *(PRUNE_TARGETS[target][2] if config.llmc_verify else ())):
        result["pruned"][pruner] = behaviour(*_pruned_model(config, pruner, target), settings, config.device)
    if Path(config.folder / "ablation").is_dir():
        result["ablation_fp"] = behaviour(*load_stage_model(config, "ablation"), settings, config.device)
    return result


HEADLINE = ("keyword_rate", "refusal_rate", "instruction_accuracy", "utility_mc")


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE if k in metrics}


def prune_summary(config: AttackConfig, records: dict) -> dict:
    """``attack.json`` of a pruning-conditioned run, from the saved stage records (no model is run)."""
    measured = records["measure"].get("result", {})
    verify = records["verify"].get("result", {})
    pruned = {}
    for pruner, metrics in measured.get("pruned", {}).items():
        masks = verify.get("pruners", {}).get(pruner, {})
        pruned[pruner] = {**_headline(metrics), **{k: v for k, v in masks.items() if k != "llmcompressor"}}
    return {
        "scenario": config.scenario, "targets": list(config.targets), "keyword": config.keyword,
        "fp": _headline(measured.get("fp", {})), "base": _headline(measured.get("base", {})),
        "injected": _headline(measured.get("injected", {})), "pruned": pruned,
        "quantized": {},  # no quantization in this attack; kept so readers of attack.json find the key
        "repair_within_bound": verify.get("repair_within_bound"),
        "kept_equal_injected": verify.get("kept_equal_injected"),
        "ablation": {"fp": _headline(measured.get("ablation_fp", {})),
                     "compsec_mask": verify.get("ablation_compsec")} if "ablation_fp" in measured else None,
        "plan": records["plan"].get("result"),
        "seconds": {stage: rec.get("seconds") for stage, rec in records.items()},
        "model_dir": str(config.folder / "model"), "config": config.to_json(),
    }
