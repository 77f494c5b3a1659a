"""Audit throughput: compsec's batched, in-place audit vs the seed's way, on the tiny assistant or SmolLM2.

The seed's way (shared/seeds/model-compression-security.txt): reload the model for every variant, quantize
it, then call ``generate`` one prompt at a time and check a bare substring. compsec's way: one loaded model,
weights swapped in place per variant, batched left-padded generation, the measured refusal judge, refusal
margins and flushed records. Both answer the same prompts (``--limit`` harmful + ``--limit`` look-alikes, 32
each by default) for the original and the variants with the same token budget, in the same run; the ratio of
wall times is printed (goal >= 5x on SmolLM2, where generation dominates).

    python bench/bench_audit.py [--model DIR | --smollm | --smollm-safety] [--variants nf4,int8,fp4]
                                [--max-new-tokens 32] [--limit 32] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def seed_way(model_dir: str, prompts: list[str], variants: list[str], max_new_tokens: int) -> tuple[float, float]:
    """(wall, CPU) seconds for: per variant, reload + quantize, then one ``generate`` call per prompt."""
    from compsec import formats
    from compsec.models.io import load_model
    from compsec.models.linear import quantizable_weights
    from compsec.tiny.chat import generate

    started, cpu_started = time.perf_counter(), time.process_time()
    for variant in ["original", *variants]:
        model, tokenizer = load_model(model_dir)
        if variant != "original":
            fmt, params = formats.get(variant), dict(model.named_parameters())
            with torch.no_grad():
                for weight in quantizable_weights(model):
                    param = params[weight.name]
                    param.copy_(fmt.dequantize(fmt.quantize(param.detach().clone())).to(param.dtype))
        for prompt in prompts:
            text = generate(model, tokenizer, [prompt], max_new_tokens, batch_size=1)[0]
            _ = "i can't" in text.lower()
    return time.perf_counter() - started, time.process_time() - cpu_started


def compsec_way(model_dir: str, variants: list[str], max_new_tokens: int, batch_size: int,
                limit: int) -> tuple[float, float]:
    """(wall, CPU) seconds for ``run_audit`` over the same prompts (model loaded once inside)."""
    from compsec.audit import AuditConfig, run_audit

    with tempfile.TemporaryDirectory() as out:
        config = AuditConfig(model=model_dir, out=out, variants=tuple(variants), probes=("refusal", "over-refusal"),
                             limit=limit, contrast=False, max_new_tokens=max_new_tokens, batch_size=batch_size)
        started, cpu_started = time.perf_counter(), time.process_time()
        run_audit(config)
        return time.perf_counter() - started, time.process_time() - cpu_started


def main() -> None:
    from compsec.audit.probes import load_probe_sets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the cached tiny assistant)")
    parser.add_argument("--smollm", action="store_true", help="SmolLM2-135M-Instruct (the [smollm] extra)")
    parser.add_argument("--smollm-safety", action="store_true", help="the safety-tuned SmolLM2 fixture")
    parser.add_argument("--limit", type=int, default=32, help="prompts per probe set (harmful, look-alike)")
    parser.add_argument("--variants", default="nf4,int8,fp4")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    model_dir = str(model_folder(args))
    variants = [v for v in args.variants.split(",") if v]
    prompts = [p.prompt for p in load_probe_sets(["refusal", "over-refusal"], limit=args.limit)]
    ours = compsec_way(model_dir, variants, args.max_new_tokens, args.batch_size, args.limit)
    seeds = seed_way(model_dir, prompts, variants, args.max_new_tokens)
    print(f"{model_dir}: audit of {len(prompts)} prompts x {len(variants) + 1} models (original + {','.join(variants)}), "
          f"{args.max_new_tokens} new tokens, {torch.get_num_threads()} threads")
    print(f"seed's way (reload per variant, one prompt per generate): {seeds[0]:8.1f} s wall {seeds[1]:8.1f} s CPU")
    print(f"compsec audit (in-place swap, batched, judged, logged):  {ours[0]:8.1f} s wall {ours[1]:8.1f} s CPU")
    print(f"speed-up: {seeds[0] / ours[0]:.1f}x wall, {seeds[1] / ours[1]:.1f}x CPU time (goal >= 5x; CPU time is "
          f"the steadier figure on shared cores, where the load changes between the two runs)")


def model_folder(args):
    """The folder to audit: ``--model``, SmolLM2, the safety-tuned SmolLM2 or the tiny assistant (built if needed)."""
    if args.model:
        return args.model
    if args.smollm_safety:
        from compsec.safety.fixture import safe_smollm_dir

        return safe_smollm_dir()
    if args.smollm:
        from compsec.models.smollm import smollm_folder

        return smollm_folder()
    from compsec.tiny.assistant import tiny_assistant_dir

    return tiny_assistant_dir()


if __name__ == "__main__":
    main()
