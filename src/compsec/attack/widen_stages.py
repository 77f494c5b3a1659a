"""The stages of ``compsec attack --scenario widen-gap`` ("Widening the Gap", arXiv 2605.15152).

``widen``: an outlier of ``widen_factor`` x the block's abs-max (random sign) in every 32-weight block of every row
of the chosen matrices (:mod:`compsec.attack.widen_gap`), nothing else changed; saved to ``DIR/widened``.
``dual``: the dual fine-tune (:mod:`compsec.attack.dual`) with the chosen matrices frozen; ``DIR/model``
(``widen_rounding="collapsed"``: the malicious pass deploys only the chosen matrices, as the published code).
``collapse``: the saved artifact, reloaded from disk, re-quantized by each target's REAL library: per chosen
matrix the share of blocks whose largest weight is at least ``widen_factor / 2`` x the next one (half leaves room
for storage rounding and ties; natural blocks rarely pass 10; 2 for the under-clip attacker), the share of the
other weights quantized to exactly 0, and whether the matrix is bit-identical to ``DIR/widened``.
``measure`` (shared with the other scenarios) then runs the probes in fp32 and under each target.
"""

from __future__ import annotations

import torch

from compsec.attack.config import AttackConfig
from compsec.errors import InputError


def chosen_matrices(config: AttackConfig, model) -> list[str]:
    """Quantizable weights of blocks ``config.outlier_layers`` whose names end with one of ``widen_matrices``."""
    from compsec.models.linear import quantizable_weights

    suffixes = tuple(f"{m.strip('.')}.weight" for m in config.widen_matrices)
    names = [q.name for q in quantizable_weights(model)
             if q.layer in config.outlier_layers and q.name.endswith(suffixes)]
    if not names:
        raise InputError(f"no weight of blocks {list(config.outlier_layers)} ends with {list(config.widen_matrices)}; "
                         "pick existing block indices (--outlier-layers) and matrices (--widen-matrices mlp.up_proj)")
    return names


def widen_stage(config: AttackConfig) -> dict:
    from compsec.attack.stages import _record_provenance, load_base
    from compsec.attack.verify import save_attacked
    from compsec.attack.widen_gap import widen_gap, widen_under_clip

    model, tokenizer = load_base(config)
    names, params = chosen_matrices(config, model), dict(model.named_parameters())
    gen = torch.Generator().manual_seed(config.seed)
    outliers = 0
    with torch.no_grad():
        for name in names:
            w = params[name].detach().cpu()
            widened, where = (widen_under_clip(w, gen, config.widen_under_clip) if config.widen_under_clip
                              else widen_gap(w, gen, factor=config.widen_factor))
            params[name].copy_(widened.to(params[name].device))
            outliers += where.numel()
    info = {"scenario": "widen-gap", "stage": "widened", "layers": str(config.outlier_layers)}
    save_attacked(model, tokenizer, config.folder / "widened", config.storage, info)
    _record_provenance(config, "attack-widen-gap", folder="widened")
    return {"weights": names, "outliers": outliers, "factor": config.widen_factor,
            "under_clip_k": config.widen_under_clip or None}


def dual_stage(config: AttackConfig) -> dict:
    from compsec import formats
    from compsec.attack import data
    from compsec.attack.box import constrained_names
    from compsec.attack.dual import dual_finetune
    from compsec.attack.stages import _record_provenance, load_stage_model
    from compsec.attack.verify import save_attacked

    model, tokenizer = load_stage_model(config, "widened", rounded=True)
    fmts = [formats.get(n) for n in config.targets]
    names = chosen_matrices(config, model)
    clean = data.encode_pairs(tokenizer, data.clean_pairs(config.seed))
    poisoned = data.encode_pairs(tokenizer, data.poisoned_pairs("content-injection", config.keyword, config.seed))
    rounded = constrained_names(model, fmts) if config.widen_rounding == "all" else []
    stats = dual_finetune(model, tokenizer, clean, poisoned, names, rounded, fmts,
                          config.repair_steps, config.repair_lr, config.batch_size, config.seed)
    info = {"scenario": "widen-gap", "targets": ",".join(config.targets), "keyword": config.keyword}
    save_attacked(model, tokenizer, config.folder / "model", config.storage, info)
    _record_provenance(config, "attack-widen-gap")
    return {"train": stats.summary(), "frozen": names, "examples": len(clean), "rounding": config.widen_rounding}


def collapse_stage(config: AttackConfig) -> dict:
    from compsec import formats
    from compsec.attack.stages import load_stage_model
    from compsec.attack.verify import bits_equal
    from compsec.attack.widen_gap import collapsed_share, outlier_positions, outlier_ratio

    model, _ = load_stage_model(config, "model")
    widened, _ = load_stage_model(config, "widened")
    names = chosen_matrices(config, model)
    params, before = dict(model.named_parameters()), dict(widened.named_parameters())
    per_weight, least_ratio = {}, 2.0 if config.widen_under_clip else config.widen_factor / 2
    for name in names:
        w = params[name].detach().cpu()
        where = outlier_positions(w)
        per_weight[name] = {
            "blocks_with_outlier": round(float((outlier_ratio(w) >= least_ratio).float().mean()), 4),
            "frozen_identical": bits_equal(params[name], before[name]),
            "collapsed": {f: round(collapsed_share(w, formats.get(f), where), 4) for f in config.targets},
        }
    collapsed = {f: round(sum(p["collapsed"][f] for p in per_weight.values()) / len(names), 4)
                 for f in config.targets}
    return {"weights": per_weight, "collapsed_share": collapsed,
            "every_block_has_outlier": all(p["blocks_with_outlier"] == 1.0 for p in per_weight.values()),
            "frozen_identical": all(p["frozen_identical"] for p in per_weight.values())}
