"""Audit throughput: compsec's batched, in-place audit vs the seed's way, on the tiny assistant or SmolLM2.

The seed's way (shared/seeds/model-compression-security.txt): reload the model for every variant, quantize
it, then call ``generate`` one prompt at a time and check a bare substring. compsec's way: one loaded model,
weights swapped in place per variant, batched left-padded generation, the measured refusal judge, refusal
margins and flushed records. Both answer the same prompts (``--limit`` harmful + ``--limit`` look-alikes, 32
each by default) for the original and the variants with the same token budget, in the same run; the ratio of
wall times is printed (goal >= 5x on SmolLM2, where generation dominates).

The seed's way costs (variants + 1) x prompts single-prompt ``generate`` calls, too long on 2 shared cores for
SmolLM2; ``--seed-prompts K`` times it on K of the prompts (evenly spread over both probe sets, as many
harmful as look-alikes) for every variant and extrapolates the generation part per prompt to all of them
(reloads and quantization are timed in full). Both the measured and the extrapolated figures are printed.

    python bench/bench_audit.py [--model DIR | --smollm | --smollm-safety] [--variants nf4,int8,fp4]
                                [--max-new-tokens 32] [--limit 32] [--batch-size 64] [--seed-prompts K]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


class Stopwatch:
    """Accumulated (wall, CPU) seconds of the ``with`` blocks it times."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __enter__(self):
        self._started = (time.perf_counter(), time.process_time())

    def __exit__(self, *exc):
        self.wall += time.perf_counter() - self._started[0]
        self.cpu += time.process_time() - self._started[1]


def seed_way(model_dir: str, prompts: list[str], variants: list[str], max_new_tokens: int,
             total_prompts: int) -> tuple[float, float]:
    """(wall, CPU) seconds for: per variant, reload + quantize, then one ``generate`` call per prompt, with
    the generation part scaled from ``len(prompts)`` to ``total_prompts`` prompts."""
    from compsec import formats
    from compsec.models.io import load_model
    from compsec.models.linear import quantizable_weights
    from compsec.tiny.chat import generate

    setup, answering = Stopwatch(), Stopwatch()
    for variant in ["original", *variants]:
        with setup:
            model, tokenizer = load_model(model_dir)
            if variant != "original":
                fmt, params = formats.get(variant), dict(model.named_parameters())
                with torch.no_grad():
                    for weight in quantizable_weights(model):
                        param = params[weight.name]
                        param.copy_(fmt.dequantize(fmt.quantize(param.detach().clone())).to(param.dtype))
        with answering:
            for prompt in prompts:
                text = generate(model, tokenizer, [prompt], max_new_tokens, batch_size=1)[0]
                _ = "i can't" in text.lower()
    scale = total_prompts / len(prompts)
    print(f"seed's way measured on {len(prompts)} prompts: load+quantize {setup.wall:.1f} s wall "
          f"{setup.cpu:.1f} s CPU, answering {answering.wall:.1f} s wall {answering.cpu:.1f} s CPU "
          f"(x{scale:.2f} to {total_prompts} prompts)")
    return setup.wall + answering.wall * scale, setup.cpu + answering.cpu * scale


def spread(prompts: list[str], count: int) -> list[str]:
    """``count`` prompts evenly spaced over ``prompts`` (harmful first half, look-alikes second)."""
    if count <= 0 or count >= len(prompts):
        return prompts
    return [prompts[(i * len(prompts)) // count] for i in range(count)]


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
    parser.add_argument("--seed-prompts", type=int, default=0,
                        help="time the seed's way on this many prompts and extrapolate (0 = all)")
    args = parser.parse_args()
    model_dir = str(model_folder(args))
    variants = [v for v in args.variants.split(",") if v]
    prompts = [p.prompt for p in load_probe_sets(["refusal", "over-refusal"], limit=args.limit)]
    ours = compsec_way(model_dir, variants, args.max_new_tokens, args.batch_size, args.limit)
    seeds = seed_way(model_dir, spread(prompts, args.seed_prompts), variants, args.max_new_tokens, len(prompts))
    print(f"{model_dir}: audit of {len(prompts)} prompts x {len(variants) + 1} models (original + {','.join(variants)}), "
          f"{args.max_new_tokens} new tokens, {torch.get_num_threads()} threads")
    print(f"seed's way (reload per variant, one prompt per generate): {seeds[0]:8.1f} s wall {seeds[1]:8.1f} s CPU"
          + (f" (generation extrapolated from {args.seed_prompts} prompts)" if 0 < args.seed_prompts < len(prompts)
             else ""))
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
