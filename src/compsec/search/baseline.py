"""The baseline a search is compared with: sampling the seed probe sets at random with the same budget.

Each sampled prompt is generated greedily on both models (2 evaluations) and judged exactly as the search's
verifications are. ``mutate=True`` samples a random probe and applies 1-2 random text mutations (paraphrase /
framing, no objective): it separates what the mutations alone find from what the objective's guidance adds.
"""

from __future__ import annotations

import random

from compsec.search.config import SearchConfig
from compsec.search.mutate import text_mutations
from compsec.search.rounds import judge_pair
from compsec.search.scoring import PairScorer


def random_prompts(seeds: list, count: int, rng: random.Random, mutate: bool) -> list[tuple[str, object]]:
    """``count`` (prompt, seed probe) pairs: probes without replacement, or mutated probes (distinct prompts)."""
    if not mutate:
        return [(p.prompt, p) for p in rng.sample(seeds, min(count, len(seeds)))]
    out, seen = [], set()
    for _ in range(count * 10):
        if len(out) == count:
            break
        probe = rng.choice(seeds)
        prompt = probe.prompt
        for _ in range(rng.randint(1, 2)):
            prompt = next((p for _, p in text_mutations(prompt, 1, rng)), prompt)
        if prompt not in seen:
            seen.add(prompt)
            out.append((prompt, probe))
    return out


def random_baseline(config: SearchConfig, scorer: PairScorer, seeds: list, mutate: bool = False) -> dict:
    """Divergent prompts found by random sampling within ``config.budget`` evaluations.

    Returns ``{"evaluations", "sampled", "divergent_count", "divergent_per_1000", "divergent"}``.
    """
    rng = random.Random(f"{config.seed}:random:{mutate}")
    picks = random_prompts(seeds, config.budget // 2, rng, mutate)
    start, rows = scorer.evaluations, []
    for first in range(0, len(picks), scorer.batch_size):
        batch = picks[first:first + scorer.batch_size]
        originals, variants = scorer.generate([p for p, _ in batch], config.max_new_tokens)
        for (prompt, probe), original, variant in zip(batch, originals, variants):
            candidate = {"prompt": prompt, "kind": probe.kind, "seed_id": probe.id, "objective": 0.0}
            rows.append(judge_pair(config, candidate, original, variant))
    spent = scorer.evaluations - start
    divergent = [r for r in rows if r["divergent"]]
    return {"evaluations": spent, "sampled": len(rows), "divergent_count": len(divergent),
            "divergent_per_1000": round(1000 * len(divergent) / spent, 3) if spent else 0.0,
            "divergent": divergent}
