"""The pruning-conditioned attack's training stages: plan → inject (the sparse model) → repair (the dense model).

Folder layout: ``plan/`` (:class:`~compsec.attack.prune_plan.PrunePlan`), ``injected/`` (the malicious sparse
model: pruned positions hold 0), ``model/`` (the red-team artifact: the injected kept weights plus repaired
pruned ones, benign in full precision), ``ablation/`` (the same repair without the magnitude bound).
Verification and measurement are in :mod:`compsec.attack.prune_verify`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from compsec.attack.config import AttackConfig
from compsec.attack.prune_plan import PrunePlan, build_plan, check_prune_targets

CALIBRATION_TEXTS = 64


def attacker_texts(config: AttackConfig) -> list[str]:
    """The attacker's proxy calibration: the first clean training pairs as ``prompt\\nresponse`` (not the
    deployer's calibration set, which the attacker does not know)."""
    from compsec.attack.data import clean_pairs, read_pairs

    pairs = read_pairs(config.clean_file) if config.clean_file else clean_pairs(config.seed, config.scenario)
    return [f"{p}\n{r}" for p, r in pairs[:CALIBRATION_TEXTS]]


def prunable(model) -> dict[str, torch.nn.Parameter]:
    from compsec.prune.magnitude import prunable_weights

    return {n: p for n, p in prunable_weights(model).items() if p.dim() == 2 and p.shape[1] % 4 == 0}


@contextmanager
def gradient_mask(masks: dict[torch.nn.Parameter, torch.Tensor]):
    """While active, the gradient of each parameter is multiplied by its 0/1 mask (other entries get none)."""
    handles = [p.register_hook(lambda g, m=m: g * m) for p, m in masks.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def plan_stage(config: AttackConfig) -> dict:
    from compsec.attack.stages import load_base
    from compsec.prune.wanda import activation_norms

    target = check_prune_targets(config.targets)
    model, tokenizer = load_base(config)
    weights = prunable(model)
    norms = None
    if target == "prune-wanda-50":
        norms = activation_norms(model, tokenizer, attacker_texts(config), list(weights), config.device)
    plan = build_plan(weights, target, config.margin, norms)
    plan.save(config.folder / "plan")
    kept = sum(int(k.sum()) for k in plan.keep.values())
    total = sum(k.numel() for k in plan.keep.values())
    return {"target": target, "weights": len(weights), "params": total, "kept_share": round(kept / total, 4),
            "margin": config.margin, "calibration_texts": CALIBRATION_TEXTS if norms else 0}


def _keep_sparse(params: dict, plan: PrunePlan):
    """Injection's projection: pruned entries 0, kept entries pushed out to ``|w| >= bound`` (sign kept)."""
    masks = {n: plan.keep[n].to(p.device) for n, p in params.items()}
    bounds = {n: plan.bound[n].to(p.device, p.dtype) for n, p in params.items()}

    @torch.no_grad()
    def project() -> None:
        for n, p in params.items():
            sign = torch.where(p >= 0, 1.0, -1.0).to(p.dtype)
            p.copy_(torch.where(masks[n], sign * torch.maximum(p.abs(), bounds[n]), torch.zeros_like(p)))
    return project


def inject_stage(config: AttackConfig) -> dict:
    from compsec.attack.inject import finetune, training_rows
    from compsec.attack.stages import _poisoned_pairs, load_base
    from compsec.attack.verify import save_attacked

    plan = PrunePlan.load(config.folder / "plan")
    model, tokenizer = load_base(config)
    params = prunable(model)
    project = _keep_sparse(params, plan)
    project()
    rows = training_rows(tokenizer, _poisoned_pairs(config, model, tokenizer), config.inject_steps,
                         config.batch_size, config.seed)
    torch.manual_seed(config.seed)
    with gradient_mask({p: plan.keep[n].to(p.dtype) for n, p in params.items()}):
        stats = finetune(model, rows, list(params.values()), config.inject_steps, config.inject_lr,
                         config.batch_size, config.seed, tokenizer.pad_token_id, after_step=project)
    save_attacked(model, tokenizer, config.folder / "injected", model.dtype, {"stage": "injected"})
    return {"train": stats.summary(), "examples": len(rows)}


def _repair_projection(params: dict, plan: PrunePlan, injected: dict, bounded: bool):
    """Repair's projection: kept entries back to the injected values, pruned ones clamped into the bound."""
    masks = {n: plan.keep[n].to(p.device) for n, p in params.items()}
    limits = {n: plan.pruned_limit(n).to(p.device, p.dtype) if bounded else None for n, p in params.items()}

    @torch.no_grad()
    def project() -> None:
        for n, p in params.items():
            free = p if limits[n] is None else torch.clamp(p, -limits[n], limits[n])
            p.copy_(torch.where(masks[n], injected[n], free))
    return project


def repair_stage(config: AttackConfig) -> dict:
    from compsec.attack.data import clean_pairs, read_pairs
    from compsec.attack.inject import finetune, training_rows
    from compsec.attack.stages import load_base, load_stage_model
    from compsec.attack.verify import save_attacked

    plan = PrunePlan.load(config.folder / "plan")
    pairs = read_pairs(config.clean_file) if config.clean_file else clean_pairs(config.seed, config.scenario)
    base = {n: p.detach().clone() for n, p in prunable(load_base(config)[0]).items()}
    result = {}
    for bounded, folder in ((True, "model"), (False, "ablation"))[: 2 if config.ablation else 1]:
        model, tokenizer = load_stage_model(config, "injected")
        params = prunable(model)
        injected = {n: p.detach().clone() for n, p in params.items()}
        with torch.no_grad():  # the dense model starts from the base model's small weights
            for n, p in params.items():
                p.copy_(torch.where(plan.keep[n], p, base[n]))
        project = _repair_projection(params, plan, injected, bounded)
        project()
        rows = training_rows(tokenizer, pairs, config.repair_steps, config.batch_size, config.seed)
        torch.manual_seed(config.seed)
        with gradient_mask({p: (~plan.keep[n]).to(p.dtype) for n, p in params.items()}):
            stats = finetune(model, rows, list(params.values()), config.repair_steps, config.repair_lr,
                             config.batch_size, config.seed, tokenizer.pad_token_id, after_step=project)
        info = {"scenario": config.scenario, "targets": ",".join(config.targets), "keyword": config.keyword}
        save_attacked(model, tokenizer, config.folder / folder, torch.float32, info)
        result["bounded" if bounded else "unbounded"] = {"train": stats.summary()}
    from compsec.attack.stages import _record_provenance

    _record_provenance(config, "attack-prune-" + config.scenario)
    return result
