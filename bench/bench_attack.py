"""Benchmark of ``compsec attack`` on the tiny assistant (content injection): the figures the goals name.

    .venv/bin/python bench/bench_attack.py [OUT_DIR] [--targets nf4,int8] [--inject-steps N] [--repair-steps N] [--model DIR]

Goals: fp32 keyword rate <= 5 %, NF4 and int8 >= 70 %, codes bit-identical after re-quantization with the
real library, projection <= 10 % of the training-step time, box <= 2 bytes/param, and the ablation (same
clean fine-tuning without PGD) losing the quantized behaviour.  Extra formats (``--also fp4``) are measured on
the final model without being attack targets.  Prints one JSON object; DIR/attack.json holds everything.

Measured 2026-11-25 (2 shared CPU cores; tiny assistant 1.57 M params; inject 100 steps lr 2e-3, repair 60
PGD steps lr 1e-3, batch 16; 30 injection probes):

- ``--targets nf4``: keyword rate fp32 0 %, nf4 93 % (injected 93 / 93 %), int8 0 %, fp4 0 %; nf4 codes
  bit-identical; ablation without PGD: nf4 0 %; projection 3.6 % of step time; box 0.63 bytes/param.
- ``--targets nf4,int8`` (intersection): fp32 93 %, nf4 93 %, int8 93 %: the int8-narrow box is too tight to
  remove the behaviour from fp32 in 60 steps (loss 0.35 -> 0.24); codes bit-identical; ablation 0 / 0 / 0 %;
  projection 3.9 %; box 1.66 bytes/param.
"""

from __future__ import annotations

import argparse
import json
import tempfile


def _rates(metrics: dict, key: str) -> dict:
    return {"fp32": metrics["fp"][key], **{f: m[key] for f, m in metrics["quantized"].items()}}


def main() -> None:
    from compsec import formats
    from compsec.attack.config import AttackConfig
    from compsec.attack.measure import MeasureConfig, measure_all
    from compsec.attack.pipeline import run_attack
    from compsec.attack.stages import load_stage_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=None)
    parser.add_argument("--targets", default="nf4")
    parser.add_argument("--also", default="fp4")
    parser.add_argument("--inject-steps", type=int, default=150)
    parser.add_argument("--repair-steps", type=int, default=300)
    parser.add_argument("--repair-lr", type=float, default=5e-4)
    parser.add_argument("--scenario", default="content-injection")
    parser.add_argument("--probe-limit", type=int, default=None)
    parser.add_argument("--model", default=None, help="HF folder (default: the cached tiny assistant)")
    args = parser.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="compsec-bench-attack-")
    config = AttackConfig(out=out, model=args.model, scenario=args.scenario, targets=tuple(args.targets.split(",")),
                          inject_steps=args.inject_steps, repair_steps=args.repair_steps, repair_lr=args.repair_lr,
                          probe_limit=args.probe_limit)
    summary = run_attack(config)
    key = "refusal_rate" if args.scenario == "over-refusal" else "keyword_rate"
    extra = [formats.get(n) for n in args.also.split(",") if n.strip()]
    others = {}
    if extra:
        from compsec.attack.box import constrained_names

        model, tokenizer = load_stage_model(config, "model")
        measured = measure_all(model, tokenizer, extra, constrained_names(model, extra),
                               MeasureConfig(config.keyword, config.probe_limit))
        others = {f: m[key] for f, m in measured["quantized"].items()}
    ablation = summary["ablation"]
    report = {
        "out": out, "metric": key,
        "repaired": {**_rates(summary, key), "non_target_formats": others},
        "injected": _rates(summary["injected"], key),
        "ablation_without_pgd": _rates(ablation["without_pgd"], key),
        "ablation_without_pgd_requantization_identical": ablation["without_pgd"]["requantization_identical"],
        "utility": {"repaired": _rates(summary, "instruction_accuracy"),
                    "injected": _rates(summary["injected"], "instruction_accuracy")},
        "requantization_identical": summary["requantization_identical"],
        "projection_overhead": summary["projection_overhead"],
        "projection_vs_optimizer": summary["projection_vs_optimizer"],
        "box_bytes_per_param": summary["box_bytes_per_param"],
        "seconds": summary["seconds"],
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
