"""Divergence search vs random probe sampling: divergent prompts found per 1,000 model evaluations.

    .venv/bin/python bench/bench_search.py [--attacked DIR] [--budget 1000] [--variant nf4] [--json FILE]

On the benign tiny assistant and on a quantization-conditioned attacked one (``compsec attack``, target nf4,
content injection; built in a temporary folder when ``--attacked`` is not given: about 5 minutes), each with the
same evaluation budget (one candidate through one model = 1, one greedy generation = 1, a gradient = 3 per model):

- ``search:refusal-gap`` and ``search:kl`` — ``compsec.search.run_search`` seeded with the refusal,
  over-refusal and injection probe sets;
- ``random`` — probes drawn at random without replacement, generated on both models (the baseline);
- ``random-mutated`` — random probes with 1-2 random paraphrases / framings (mutations without guidance).

A prompt is divergent when the refusal judge's verdicts differ (refusal flip) or the keyword appears only in
the variant's response. Prints one JSON object (also written to ``--json``): per model and method, the count,
the rate per 1,000 evaluations, the distinct seeds behind them, the reasons, wall seconds, and the ratio of
each method's rate to random's measured in the same run.

Measured 2026-11-25 (2 shared, heavily loaded CPU cores; budget 1000; variant nf4; attacked = inject 100 /
repair 60 steps, nf4 keyword rate 93 %, fp32 0 %). Divergent prompts per 1,000 evaluations (distinct seeds):

| model    | search:refusal-gap | search:kl    | random (642 evals: every probe) | random-mutated |
|----------|--------------------|--------------|---------------------------------|----------------|
| benign   | 12.0 (2) = 3.9x    | 9.0 (2) = 2.9x | 3.1 (2)                       | 4.0 (4)        |
| attacked | 87.1 (11) = 0.36x  | 67.1 (11) = 0.28x | 241.4 (155)                | 271.0 (164)    |

Benign: every divergence is a refusal flip near two boundary seeds; the search finds 4x as many per evaluation,
all variations of those two prompts. Attacked: the injected keyword appears in most injection answers, which no
objective here targets (1 and 5 keyword finds); on refusal flips alone the search gets 86 per 1,000 vs random's
51 (1.7x). Predicted flips (margins of opposite sign) were divergent in 71/85 (attacked) and 12/13 (benign)
verifications; the non-flip verifications found 0/22 on the benign model.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path


def attacked_model(folder: str | None, scratch: Path) -> str:
    """The attacked model folder: ``folder`` or a fresh content-injection attack targeting nf4."""
    if folder:
        return folder
    from compsec.attack.config import AttackConfig
    from compsec.attack.pipeline import run_attack

    config = AttackConfig(out=str(scratch / "attack"), targets=("nf4",), inject_steps=100, repair_steps=60,
                          ablation=False, probe_limit=30)
    run_attack(config)
    return str(config.folder / "model")


def _row(divergent: list[dict], spent: int, seconds: float) -> dict:
    return {"evaluations": spent, "divergent": len(divergent),
            "per_1000": round(1000 * len(divergent) / spent, 2) if spent else 0.0,
            "seeds": len({d["seed_id"] for d in divergent}),
            "reasons": dict(Counter(d["why"] for d in divergent)), "seconds": round(seconds, 1)}


def measure(model_dir: str, variant: str, budget: int, scratch: Path) -> dict:
    """Rows for every method on one model, plus each method's rate relative to random's."""
    from compsec.models.io import load_model
    from compsec.search import SearchConfig, run_search
    from compsec.search.baseline import random_baseline
    from compsec.search.loop import load_pair, load_seeds
    from compsec.search.state import read_search_log

    model, tokenizer = load_model(model_dir)
    rows = {}
    for objective in ("refusal-gap", "kl"):
        config = SearchConfig(model=model_dir, variant=variant, objective=objective, budget=budget,
                              out=str(scratch / f"{Path(model_dir).name}-{objective}"))
        started = time.perf_counter()
        summary = run_search(config, model=model, tokenizer=tokenizer).summary
        _, events = read_search_log(config.out)
        divergent = [v for e in events for v in e["verified"] if v["divergent"]]
        rows[f"search:{objective}"] = _row(divergent, summary["evaluations"], time.perf_counter() - started)
    config = SearchConfig(model=model_dir, variant=variant, budget=budget)
    pair, seeds = load_pair(config, model, tokenizer), load_seeds(config)
    for name, mutate in (("random", False), ("random-mutated", True)):
        started = time.perf_counter()
        result = random_baseline(config, pair, seeds, mutate=mutate)
        rows[name] = _row(result["divergent"], result["evaluations"], time.perf_counter() - started)
    base = rows["random"]["per_1000"]
    for row in rows.values():
        row["ratio_vs_random"] = round(row["per_1000"] / base, 2) if base else None
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attacked", help="attacked model folder (default: build one, about 5 minutes)")
    parser.add_argument("--budget", type=int, default=1000, help="evaluations per method")
    parser.add_argument("--variant", default="nf4", help="compressed variant searched")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args()
    from compsec.tiny.assistant import tiny_assistant_dir

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        models = {"benign": str(tiny_assistant_dir()), "attacked": attacked_model(args.attacked, scratch)}
        report = {"budget": args.budget, "variant": args.variant,
                  "models": {name: measure(folder, args.variant, args.budget, scratch) for name, folder in models.items()}}
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
