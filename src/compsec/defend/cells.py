"""One cell of the defence matrix: load the attacked model, apply one defence, measure fp32 and each format.

Quantized behaviour is simulated with :func:`compsec.attack.measure.simulated` (every constrained weight
replaced by ``dequantize(quantize(w))``, bit-exact with the real libraries); for ``mixed`` the weights its plan
keeps in full precision are left out of the swap.  Outlier rows count zero codes with the REAL library.
"""

from __future__ import annotations

from compsec.defend.harden import HardenConfig, harden_model

NOISE_1E3 = 1e-3


def _harden(model, row, defence: str, config) -> dict:
    settings = {"noise-1e-3": {"noise": NOISE_1E3}, "noise-auto": {"noise": "auto", "c": config.c},
                "clip": {"noise": 0.0, "clip_outliers": True}}[defence]
    report = harden_model(model, HardenConfig(formats=row.targets, seed=config.seed, **settings))
    sigmas = sorted(report.sigmas.values())
    return {"codes_changed": report.codes_changed, "median_sigma": sigmas[len(sigmas) // 2] if sigmas else 0.0,
            "clipped_blocks": sum(report.clipped_blocks.values())}


def apply_defence(model, tokenizer, row, defence: str, config) -> tuple[dict, dict[str, tuple[str, ...]]]:
    """Apply ``defence`` to ``model`` in place; returns (info for the cell, weights kept per format)."""
    if defence == "none":
        return {}, {}
    if defence.startswith("group-clip-"):
        from compsec.defend.group_clip import group_clip_model_

        return {"clipped_outliers": sum(group_clip_model_(model, defence.removeprefix("group-clip-")).values())}, {}
    if defence != "mixed":
        return _harden(model, row, defence, config), {}
    from compsec.defend.mixed import plan_mixed_precision

    plans = {name: plan_mixed_precision(model, tokenizer, name, config.budget, device=config.device)
             for name in row.targets}
    info = {"protected": {n: list(p.protected) for n, p in plans.items()},
            "kept_fraction": {n: p.kept_fraction for n, p in plans.items()}}
    return info, {n: p.protected for n, p in plans.items()}


def _zero_fraction(model, names, fmt) -> float:
    from compsec.attack.outlier import zero_code_fraction

    params = dict(model.named_parameters())
    return round(sum(zero_code_fraction(params[n], fmt) for n in names) / max(len(names), 1), 4)


def _malicious(row, model, fp: dict, quantized: dict, fmts: list, kept: dict) -> dict:
    if row.scenario == "outlier":
        names = list(row.outlier_weights)
        zeros = {f.name: _zero_fraction(model, [n for n in names if n not in kept.get(f.name, ())], f)
                 for f in fmts}
        return {"fp32": float(sum(float((dict(model.named_parameters())[n] == 0).float().mean())
                                   for n in names) / max(len(names), 1)), **zeros}
    from compsec.defend.matrix import MALICIOUS_METRIC

    key = MALICIOUS_METRIC[row.scenario]
    return {"fp32": fp[key], **{name: m[key] for name, m in quantized.items()}}


def _utility_change(fp: dict, baseline: dict | None) -> dict:
    if baseline is None:
        return {"instruction_accuracy": 0.0, "utility_mc": 0.0}
    before = baseline["fp"]
    return {k: round(100 * (fp[k] - before[k]), 2) for k in ("instruction_accuracy", "utility_mc")}


def measure_cell(row, defence: str, config, baseline: dict | None) -> dict:
    """The cell for ``row`` under ``defence`` (see :mod:`compsec.defend.matrix` for its fields)."""
    from compsec.defend.prune_cells import is_prune_row, measure_prune_cell

    if is_prune_row(row):  # pruning-conditioned rows: pruners instead of formats
        return measure_prune_cell(row, defence, config, baseline)
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, behaviour, simulated
    from compsec.models.io import load_model

    model, tokenizer = load_model(row.model_dir, device=config.device)
    model = model.float()
    info, kept = apply_defence(model, tokenizer, row, defence, config)
    fmts = [formats.get(name) for name in row.targets]
    names = constrained_names(model, fmts)
    settings = MeasureConfig(row.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    fp = behaviour(model, tokenizer, settings, config.device)
    quantized = {}
    for fmt in fmts:
        with simulated(model, fmt, [n for n in names if n not in kept.get(fmt.name, ())]):
            quantized[fmt.name] = behaviour(model, tokenizer, settings, config.device)
    return {"defence": defence, **info, "malicious": _malicious(row, model, fp, quantized, fmts, kept),
            "utility_change_points": _utility_change(fp, baseline), "fp": fp, "quantized": quantized}
