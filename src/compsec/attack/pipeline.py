"""Wire the attack's stages: resumable, logged to ``DIR/events.jsonl``, summarised in ``DIR/attack.json``.

Content injection / over-refusal / vulnerable-code / custom: inject → box → repair (with the no-PGD ablation) → verify →
measure.  Outlier: outlier → measure.  Widen-gap: widen → dual → collapse → measure → deployed (the real libraries).  A stage is skipped when ``DIR/stages/<stage>.json`` exists with the
same config hash (the hash chains over earlier stages, so changing ``--targets`` reruns box and later).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from compsec.attack import deployed, stages, widen_stages
from compsec.attack.config import AttackConfig

ATTACK_STAGES: dict[str, Callable[[AttackConfig], dict]] = {
    "inject": stages.inject_stage, "box": stages.box_stage, "repair": stages.repair_stage,
    "verify": stages.verify_stage, "measure": stages.measure_stage, "outlier": stages.outlier_stage,
    "widen": widen_stages.widen_stage, "dual": widen_stages.dual_stage, "collapse": widen_stages.collapse_stage,
    "deployed": deployed.deployed_stage,
}


PRUNE_STAGES = ("plan", "inject", "repair", "verify", "measure")


def stage_function(config: AttackConfig, stage: str) -> Callable[[AttackConfig], dict]:
    """The function running ``stage`` for ``config`` (the pruning-conditioned attack has its own)."""
    if config.pruning:
        from compsec.attack import prune_stages, prune_verify

        return {"plan": prune_stages.plan_stage, "inject": prune_stages.inject_stage,
                "repair": prune_stages.repair_stage, "verify": prune_verify.verify_stage,
                "measure": prune_verify.measure_stage}[stage]
    return ATTACK_STAGES[stage]


def stage_order(config: AttackConfig) -> list[str]:
    if config.pruning:
        return list(PRUNE_STAGES)
    if config.scenario == "outlier":
        return ["outlier", "measure"]
    if config.scenario == "widen-gap":
        return ["widen", "dual", "collapse", "measure", "deployed"]
    return ["inject", "box", "repair", "verify", "measure"]


def _log(config: AttackConfig, event: dict) -> None:
    config.folder.mkdir(parents=True, exist_ok=True)
    with (config.folder / "events.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"time": round(time.time(), 3), **event}, sort_keys=True) + "\n")


def stage_hashes(config: AttackConfig) -> dict[str, str]:
    """The chained config hash of every stage of ``config``'s scenario."""
    hashes, before = {}, ""
    for stage in stage_order(config):
        before = hashes[stage] = config.stage_hash(stage, before)
    return hashes


def run_stage(config: AttackConfig, stage: str, force: bool = False) -> dict:
    """Run one stage (or reuse its saved result when its config hash matches); returns its record."""
    order = stage_order(config)
    if stage not in order:
        raise ValueError(f"stage {stage!r} is not part of scenario {config.scenario!r}; stages: {', '.join(order)}")
    digest = stage_hashes(config)[stage]
    path = config.folder / "stages" / f"{stage}.json"
    if path.is_file() and not force:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("config_hash") == digest:
            _log(config, {"event": "skip", "stage": stage, "config_hash": digest})
            return saved
    _log(config, {"event": "start", "stage": stage, "config_hash": digest})
    started = time.perf_counter()
    result = stage_function(config, stage)(config)
    record = {"stage": stage, "config_hash": digest, "seconds": round(time.perf_counter() - started, 2),
              "result": result}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    _log(config, {"event": "done", "stage": stage, "config_hash": digest, "seconds": record["seconds"]})
    return record


def run_attack(config: AttackConfig, force: bool = False) -> dict:
    """Run every stage of ``config.scenario`` in order (resuming finished ones) and write ``attack.json``.

    A ``config.model`` is loaded once first, so a model compsec refuses (or, for widen-gap, one without the
    chosen matrices) stops the run before anything is written.
    """
    if config.model is not None or config.scenario == "widen-gap":
        model, _ = stages.load_base(config)
        if config.scenario == "widen-gap":
            widen_stages.chosen_matrices(config, model)
    for stage in stage_order(config):
        run_stage(config, stage, force=force)
    return write_summary(config)


def _load(config: AttackConfig, stage: str) -> dict:
    path = config.folder / "stages" / f"{stage}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _headline(metrics: dict, scenario: str = "content-injection") -> dict:
    from compsec.attack.code_measure import CODE_KEYS

    keys = CODE_KEYS if scenario == "vulnerable-code" else (
        "keyword_rate", "refusal_rate", "instruction_accuracy", "utility_mc")
    return {"fp": {k: metrics["fp"][k] for k in keys},
            "quantized": {f: {k: m[k] for k in keys} for f, m in metrics["quantized"].items()}}


def write_summary(config: AttackConfig) -> dict:
    """Assemble ``DIR/attack.json`` from the saved stage records (no model is run)."""
    records = {stage: _load(config, stage) for stage in stage_order(config)}
    if config.pruning:
        from compsec.attack.prune_verify import prune_summary

        summary = prune_summary(config, records)
        (config.folder / "attack.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        return summary
    measured = records["measure"].get("result", {})
    main = measured.get("model", {"fp": {}, "quantized": {}})
    summary = {
        "scenario": config.scenario, "targets": list(config.targets), "keyword": config.keyword,
        "fp": main["fp"], "quantized": main["quantized"],
        "seconds": {stage: rec.get("seconds") for stage, rec in records.items()},
        "model_dir": str(config.folder / "model"), "config": config.to_json(),
    }
    if config.scenario == "outlier":
        summary["outlier"] = records["outlier"].get("result", {})
    elif config.scenario == "widen-gap":
        summary.update(widened=_headline(measured["widened"]) if "widened" in measured else None,
                       outlier={"weights": records["widen"]["result"]["weights"]},
                       collapse=records["collapse"].get("result", {}), train=records["dual"]["result"]["train"],
                       deployed=records["deployed"].get("result"))
    else:
        repair, verify = records["repair"]["result"], records["verify"]["result"]
        summary.update({
            "requantization_identical": verify["requantization_identical"],
            "requantization_mismatches": verify["mismatches"],
            **({"identical_share": verify["identical_share"]} if "identical_share" in verify else {}),
            "projection_overhead": repair["pgd"]["projection_overhead"],
            "projection_vs_optimizer": repair["pgd"]["projection_vs_optimizer"],
            "frozen_identical": repair["pgd"]["frozen_identical"],
            "box_bytes_per_param": records["box"]["result"]["box_bytes_per_param"],
            "box": records["box"]["result"], "train": {k: v["train"] for k, v in repair.items()},
            "injected": _headline(measured["injected"], config.scenario) if "injected" in measured else None,
            "ablation": _ablation(measured, verify, config.scenario),
        })
    (config.folder / "attack.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return summary


def _ablation(measured: dict, verify: dict, scenario: str) -> dict | None:
    """With vs without PGD: behaviour of both and whether the quantization stayed the injected one."""
    if "ablation" not in measured:
        return None
    return {"with_pgd": {**_headline(measured["model"], scenario),
                         "requantization_identical": verify["requantization_identical"]},
            "without_pgd": {**_headline(measured["ablation"], scenario),
                            "requantization_identical": verify["ablation"]["requantization_identical"]}}
