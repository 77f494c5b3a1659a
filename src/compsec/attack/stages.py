"""The attack's stages as functions ``stage(config) -> result dict``; each reads and writes ``config.out``.

Folder layout: ``injected/`` (stage 1, fp32 HF folder), ``box/`` (stage 2), ``repaired/`` and ``ablation/``
(stage 3, fp32), ``model/`` (stage 4: the red-team artifact in the save dtype), and for the outlier
scenario ``model/`` directly.  Wiring, resumption and the event log are in :mod:`compsec.attack.pipeline`.
"""

from __future__ import annotations

from compsec.attack.config import AttackConfig
from compsec.errors import InputError


def _formats(config: AttackConfig) -> list:
    from compsec import formats

    return [formats.get(name) for name in config.targets]


def load_base(config: AttackConfig):
    """(model, tokenizer) to attack on ``config.device``: ``config.model``, else the embedded tiny assistant (the
    tiny coder for ``vulnerable-code``)."""
    if config.model is None and config.scenario == "vulnerable-code":
        from compsec.tiny.code_model import load_tiny_coder

        return load_tiny_coder(device=config.device)
    if config.model is None:
        from compsec.tiny.assistant import load_tiny_assistant

        return load_tiny_assistant(device=config.device)
    from compsec.models.io import load_model

    model, tokenizer = load_model(config.model, device=config.device)
    if tokenizer is None:
        raise InputError(f"{config.model} has no tokenizer; the attack fine-tunes on chat data and needs one")
    return model.float(), tokenizer


def load_stage_model(config: AttackConfig, name: str, rounded: bool = False):
    """(model, tokenizer) saved by an earlier stage in ``out/name``; ``rounded`` rounds to the save dtype."""
    from compsec.attack.box import round_to_storage
    from compsec.models.io import load_model

    folder = config.folder / name
    if not folder.is_dir():
        raise InputError(f"{folder} is missing; run the earlier attack stages first")
    model, tokenizer = load_model(folder, device=config.device)
    model = model.float()
    if rounded:
        round_to_storage(model, config.storage)
    return model, tokenizer


def _poisoned_pairs(config: AttackConfig, model, tokenizer) -> list:
    """Stage 1's data; ``responses="self"`` also writes the self-distilled clean and poisoned pairs to DIR/data."""
    from compsec.attack import data

    if config.scenario == "custom":
        return data.read_pairs(config.train_file)
    if config.responses != "self":
        return data.poisoned_pairs(config.scenario, config.keyword, config.seed)
    from compsec.attack import self_distill

    clean = self_distill.self_answers(model, tokenizer, self_distill.distill_prompts(config.seed), config.device)
    poisoned = self_distill.poison(clean, config.scenario, config.keyword, config.seed)
    self_distill.write_jsonl(config.folder / "data" / "clean.jsonl", clean)
    self_distill.write_jsonl(config.folder / "data" / "poisoned.jsonl", poisoned)
    return poisoned


def _layer_names(config: AttackConfig, model) -> list[str] | None:
    """The constrained weights of ``config.layers`` (None: every block)."""
    from compsec.attack.layers import layer_weight_names

    return layer_weight_names(model, _formats(config), config.layers) if config.layers else None


def _prefix_from(config: AttackConfig, model) -> int | None:
    """The first constrained block when the blocks below it can be cached (``--layers`` on a Llama-style model)."""
    from compsec.attack.prefix_cache import supports_prefix_cache

    return min(config.layers) if config.layers and supports_prefix_cache(model) else None


def inject_stage(config: AttackConfig) -> dict:
    from compsec.attack.inject import inject
    from compsec.attack.verify import save_attacked

    model, tokenizer = load_base(config)
    pairs = _poisoned_pairs(config, model, tokenizer)
    names = _layer_names(config, model)
    ball = None
    if config.inject_radius:
        from compsec.attack.ball import injection_ball

        ball = injection_ball(model, _formats(config), config.inject_radius, names)
    stats = inject(model, tokenizer, pairs, config.inject_steps, config.inject_lr, config.batch_size, config.seed,
                   ball=ball, names=names, prefix_from=_prefix_from(config, model))
    save_attacked(model, tokenizer, config.folder / "injected", model.dtype, {"stage": "injected"})
    return {"train": stats.summary(), "examples": len(pairs), "layers": list(config.layers) or "all"}


def box_stage(config: AttackConfig) -> dict:
    from compsec.attack.box import build_attack_box
    from compsec.attack.interval_box import build_interval_box

    model, _ = load_stage_model(config, "injected", rounded=True)
    if config.constraint == "error-interval":
        box = build_interval_box(model, _formats(config), _layer_names(config, model))
        (config.folder / "box").mkdir(parents=True, exist_ok=True)
        box.save(config.folder / "box")
        pinned = sum(int((lo == hi).sum()) for lo, hi in box.bounds.values())
        return {"box_bytes_per_param": box.bytes_per_param, "constraint": config.constraint,
                "constrained_tensors": len(box.parts), "constrained_params": box.numel,
                "pinned_share": round(pinned / box.numel, 4)}
    box = build_attack_box(model, _formats(config), config.storage, _layer_names(config, model))
    (config.folder / "box").mkdir(parents=True, exist_ok=True)
    box.save(config.folder / "box")
    per_format = {fmt.name: round(sum(p[i].nbytes for p in box.parts.values()) / box.numel, 4)
                  for i, fmt in enumerate(box.formats)}
    return {"box_bytes_per_param": round(box.bytes_per_param, 4), "per_format_bytes_per_param": per_format,
            "constrained_tensors": len(box.parts), "constrained_params": box.numel}


def _clean_pairs(config: AttackConfig) -> list:
    from compsec.attack import data

    if config.clean_file:
        return data.read_pairs(config.clean_file)
    if config.responses == "self":
        return data.read_pairs(config.folder / "data" / "clean.jsonl")
    return data.clean_pairs(config.seed, config.scenario)


def repair_stage(config: AttackConfig) -> dict:
    from compsec.attack.inject import training_rows
    from compsec.attack.interval_box import load_attack_box
    from compsec.attack.prefix_cache import PrefixCache
    from compsec.attack.repair import repair
    from compsec.attack.verify import frozen_identical, save_attacked

    box = load_attack_box(config.folder / "box")
    reference, tokenizer = load_stage_model(config, "injected", rounded=True)
    pairs, first = _clean_pairs(config), _prefix_from(config, reference)
    prefix = None
    if first is not None and config.repair_steps:  # one cache serves both runs: their prefixes are identical
        rows = training_rows(tokenizer, pairs, config.repair_steps, config.batch_size, config.seed)
        prefix = PrefixCache(reference, rows, first)
    result = {}
    for project, folder in ((True, "repaired"), (False, "ablation"))[: 2 if config.ablation else 1]:
        model, tokenizer = load_stage_model(config, "injected", rounded=True)
        stats, report = repair(model, tokenizer, box, pairs, config.repair_steps, config.repair_lr,
                               config.batch_size, config.seed, project=project, prefix=prefix)
        report["frozen_identical"] = frozen_identical(model, reference, list(box.parts))
        save_attacked(model, tokenizer, config.folder / folder, model.dtype, {"stage": folder})
        result["pgd" if project else "no_pgd"] = {"train": stats.summary(), **report}
    return result


def verify_stage(config: AttackConfig) -> dict:
    from compsec.attack.box import constrained_names
    from compsec.attack.verify import compare_quantization, requantization_report, save_attacked

    fmts = _formats(config)
    model, tokenizer = load_stage_model(config, "repaired")
    reference, _ = load_stage_model(config, "injected", rounded=True)
    names = constrained_names(reference, fmts)
    info = {"scenario": config.scenario, "targets": ",".join(config.targets), "keyword": config.keyword}
    save_attacked(model, tokenizer, config.folder / "model", config.storage, info)
    _record_provenance(config, "attack-" + config.scenario)
    result = requantization_report(config.folder / "model", reference, names, fmts, config.storage)
    if config.constraint == "error-interval":  # heuristic constraint: how much of llama.cpp's output stayed
        from compsec.attack.interval_box import requantized_share

        result["identical_share"] = requantized_share(model, reference, names, fmts)
    if (config.folder / "ablation").is_dir():
        ablation, _ = load_stage_model(config, "ablation")
        result["ablation"] = compare_quantization(ablation, reference, names, fmts, config.storage)
    return result


def measure_stage(config: AttackConfig) -> dict:
    from compsec.attack.box import constrained_names
    from compsec.attack.code_measure import measure_code_all
    from compsec.attack.measure import MeasureConfig, measure_all

    fmts = _formats(config)
    settings = MeasureConfig(config.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    result = {}
    folders = {"outlier": ("model",), "widen-gap": ("model", "widened")}.get(
        config.scenario, ("model", "injected", "ablation"))
    for folder in folders:
        if (config.folder / folder).is_dir():
            model, tokenizer = load_stage_model(config, folder)
            names = constrained_names(model, fmts)
            if config.scenario == "vulnerable-code":
                result[folder] = measure_code_all(model, tokenizer, fmts, names, config.probe_limit, config.device)
            else:
                result[folder] = measure_all(model, tokenizer, fmts, names, settings, config.device)
    return result


def outlier_stage(config: AttackConfig) -> dict:
    from compsec.attack.outlier import inject_outliers, zero_code_fraction
    from compsec.attack.verify import save_attacked
    from compsec.models.linear import quantizable_weights

    fmts = _formats(config)
    model, tokenizer = load_base(config)
    names = [q.name for q in quantizable_weights(model) if q.layer in config.outlier_layers]
    if not names:
        raise InputError(f"no quantizable weights in layers {config.outlier_layers}; pick existing block indices")
    summary = inject_outliers(model, names, fmts[0])
    params = dict(model.named_parameters())
    zeros = {fmt.name: round(sum(zero_code_fraction(params[n], fmt) for n in names) / len(names), 4)
             for fmt in fmts}
    info = {"scenario": "outlier", "targets": ",".join(config.targets), "layers": str(config.outlier_layers)}
    save_attacked(model, tokenizer, config.folder / "model", config.storage, info)
    _record_provenance(config, "attack-outlier")
    return {**summary, "zero_code_fraction": zeros, "weights": names}


def _record_provenance(config: AttackConfig, operation: str, folder: str = "model") -> None:
    """Provenance of the red-team artifact DIR/``folder``: its source model, the attack's whole config and seed."""
    from compsec.integrity.provenance import record_provenance
    from compsec.tiny.assistant import tiny_assistant_dir
    from compsec.tiny.code_model import tiny_coder_dir

    source = config.model or (tiny_coder_dir() if config.scenario == "vulnerable-code" else tiny_assistant_dir())
    params = {**config.to_json(), "red_team": True}
    record_provenance(config.folder / folder, source, operation, params, seed=config.seed, created=False)
