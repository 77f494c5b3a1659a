"""Benchmark of ``compsec harden --noise auto``: how the multiplier ``c`` trades re-randomisation for fp32 change.

    .venv/bin/python bench/bench_defence.py [--attack-dir DIR] [--formats nf4,int8] [--cs 0.25,0.5,1,2,4]
                                            [--sigmas 1e-3] [--probe-limit 30] [--seed 0]

For each ``c`` (and each fixed sigma) on a fresh copy of the model (``DIR/model`` of a ``compsec attack`` run, or
the tiny assistant): the median sigma, the fraction of each format's codes that changed, the fp32
``KL(original || hardened)`` on generic text (nats/token, with the KL of plain quantization for scale) and, for
an attack, the keyword rate and instruction accuracy in fp32 and under each quantized format.  Formats default
to the attack's targets.  Prints one JSON object.  The full attacks x defences matrix is
``compsec defend-matrix``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time


def _model(attack_dir: str | None):
    if attack_dir is None:
        from compsec.tiny.assistant import load_tiny_assistant

        return (*load_tiny_assistant(), None)
    from compsec.defend.adaptive import attack_config
    from compsec.models.io import load_model

    config = attack_config(attack_dir)
    model, tokenizer = load_model(f"{attack_dir}/model")
    return model.float(), tokenizer, config


def _behaviour(model, tokenizer, config, fmts, limit: int) -> dict:
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, measure_all

    measured = measure_all(model, tokenizer, fmts, constrained_names(model, fmts),
                           MeasureConfig(config.keyword, limit, max_new_tokens=config.max_new_tokens))
    keys = ("keyword_rate", "instruction_accuracy", "utility_mc")
    return {"fp32": {k: measured["fp"][k] for k in keys},
            **{f: {k: m[k] for k in keys} for f, m in measured["quantized"].items()}}


def _quantization_kl(model, fmts, reference, batch) -> dict:
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import simulated
    from compsec.defend.sensitivity import kl_to

    result = {}
    for fmt in fmts:
        with simulated(model, fmt, constrained_names(model, [fmt])):
            result[fmt.name] = round(kl_to(reference, model, batch), 6)
    return result


def main() -> None:
    from compsec.defend.harden import HardenConfig, harden_model
    from compsec.defend.sensitivity import encode_texts, generic_texts, kl_to, token_log_probs
    from compsec.formats.registry import parse_list

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attack-dir", default=None)
    parser.add_argument("--formats", default=None)
    parser.add_argument("--cs", default="0.25,0.5,1,2,4")
    parser.add_argument("--sigmas", default="1e-3")
    parser.add_argument("--probe-limit", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model, tokenizer, config = _model(args.attack_dir)
    fmts = parse_list(args.formats or ",".join(config.targets if config else ("nf4", "int8")))
    batch = encode_texts(tokenizer, generic_texts(tokenizer, 24))
    reference = token_log_probs(model, batch)
    report = {"model": args.attack_dir or "tiny-assistant", "formats": [f.name for f in fmts],
              "quantization_kl": _quantization_kl(model, fmts, reference, batch), "runs": []}
    if config is not None:
        report["undefended"] = _behaviour(model, tokenizer, config, fmts, args.probe_limit)
    settings = [("auto", float(c)) for c in args.cs.split(",") if c] + [(float(s), 1.0) for s in
                                                                          args.sigmas.split(",") if s]
    for noise, c in settings:
        hardened = copy.deepcopy(model)
        started = time.perf_counter()
        hard = harden_model(hardened, HardenConfig(noise=noise, c=c, formats=tuple(f.name for f in fmts),
                                                   seed=args.seed))
        sigmas = sorted(hard.sigmas.values())
        run = {"noise": noise, "c": c, "median_sigma": sigmas[len(sigmas) // 2], "codes_changed": hard.codes_changed,
               "fp32_kl": round(kl_to(reference, hardened, batch), 6),
               "harden_seconds": round(time.perf_counter() - started, 1)}
        if config is not None:
            run["behaviour"] = _behaviour(hardened, tokenizer, config, fmts, args.probe_limit)
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
