"""One round of the search, as a pure function of (config, models, state, round number) -> event dict.

Round 0 scores every seed probe on the original (the refusal margin orders them: closest to the refusal
boundary first, ``|margin|`` ascending), scores the first ``pool`` of them on the variant and verifies the best.
Later rounds take the ``beam`` best candidates, mutate each into ``children`` new prompts (half by gradient-
guided token substitution, half by paraphrase / framing), score them on both models, and verify by greedy
generation: every predicted flip of the round, then the ``verify`` best unverified other candidates.
"""

from __future__ import annotations

import random

from compsec.audit.judges import COMPLIANCE, PRESENT, REFUSAL, KeywordJudge, get_judge
from compsec.search.config import SearchConfig
from compsec.search.gradient import GRADIENT_COST, substitutions, token_gradient
from compsec.search.mutate import text_mutations
from compsec.search.objective import direction, objective_value, predicted_flip
from compsec.search.scoring import PairScorer, Score
from compsec.search.state import SearchState


def seed_round(config: SearchConfig, scorer: PairScorer, seeds: list, state: SearchState) -> dict:
    """Round 0: margins of every seed, the pool scored on the variant, the best verified."""
    start = scorer.evaluations
    prompts = [p.prompt for p in seeds]
    r, margin, first = scorer.terms(scorer.original, prompts)
    order = sorted(range(len(seeds)), key=lambda i: (abs(float(margin[i])), seeds[i].id))
    pool = order[: config.pool]
    rows = [{"id": seeds[i].id, "kind": seeds[i].kind, "prompt": prompts[i], "margin": round(float(margin[i]), 6)}
            for i in order]
    scores = scorer.score([prompts[i] for i in pool], original=(r[pool], margin[pool], first[pool]))
    scored = [_candidate(config, prompts[i], seeds[i].kind, seeds[i].id, "", "seed", s) for i, s in zip(pool, scores)]
    event = {"event": "round", "round": 0, "seeds": rows, "parents": [], "scored": scored}
    remaining = config.budget - (scorer.evaluations - start)
    event["verified"] = verify(config, scorer, scored, state, remaining)
    event["cost"] = scorer.evaluations - start
    return event


def search_round(config: SearchConfig, scorer: PairScorer, state: SearchState, allowed) -> dict | None:
    """Round ``state.rounds`` (>= 1), or None when the budget or the parents are exhausted.

    ``2 * verify`` evaluations are kept back from mutation for the round's verification.
    """
    start, parents = scorer.evaluations, state.parents(config.beam)
    rng = random.Random(f"{config.seed}:{state.rounds}")
    children: list[tuple[dict, str, str]] = []
    left = lambda: config.budget - state.spent - (scorer.evaluations - start) - 2 * len(children) - 2 * config.verify
    if not parents or left() < 2:
        return None
    known = set(state.candidates)
    for parent in parents:
        for op, prompt in _mutations(config, scorer, parent, allowed, rng, left()):
            if prompt not in known and left() >= 2:
                known.add(prompt)
                children.append((parent, op, prompt))
    scores = scorer.score([prompt for _, _, prompt in children])
    scored = [_candidate(config, prompt, parent["kind"], parent["seed_id"], parent["prompt"], op, score)
              for (parent, op, prompt), score in zip(children, scores)]
    event = {"event": "round", "round": state.rounds, "parents": [p["prompt"] for p in parents], "scored": scored}
    remaining = config.budget - state.spent - (scorer.evaluations - start)
    event["verified"] = verify(config, scorer, scored, state, remaining)
    event["cost"] = scorer.evaluations - start
    return event


def _mutations(config, scorer, parent: dict, allowed, rng, spend: int) -> list[tuple[str, str]]:
    """``(operation, prompt)`` children of one parent: gradient substitutions first, then text mutations."""
    out = []
    wanted_gradient = config.children // 2 if allowed is not None else 0
    if wanted_gradient and spend >= 2 * GRADIENT_COST + 2:
        sign = direction(parent["score"]["margin_original"])
        found = token_gradient(scorer, parent["prompt"], config.objective, sign)
        if found is not None:
            ids, grad = found
            out += [("gradient", p) for p in substitutions(scorer, ids, grad, allowed, config.top_k,
                                                           wanted_gradient, rng)]
    return out + text_mutations(parent["prompt"], config.children - len(out), rng)


def _candidate(config, prompt: str, kind: str, seed_id: str, parent: str, op: str, score: Score) -> dict:
    return {"prompt": prompt, "kind": kind, "seed_id": seed_id, "parent": parent, "op": op,
            "score": score.to_json(), "objective": round(objective_value(config.objective, score), 6),
            "predicted_flip": predicted_flip(score)}


def verify(config: SearchConfig, scorer: PairScorer, scored: list[dict], state: SearchState,
           remaining: int) -> list[dict]:
    """Generate on both models and judge: every predicted flip of the round, then the ``verify`` best others.

    Predicted flips are what the search looks for, so all of them are checked (budget permitting); the
    ``verify`` best unverified non-flips (of any round) keep the objective honest where margins miss.
    """
    by_objective = lambda c: (-c["objective"], c["prompt"])
    flips = sorted((c for c in scored if c["predicted_flip"]), key=by_objective)
    others = [c for c in sorted([*state.candidates.values(), *scored], key=by_objective) if not c["predicted_flip"]]
    chosen, extra = [], 0
    for c in flips + others:
        if 2 * (len(chosen) + 1) > remaining or (not c["predicted_flip"] and extra >= config.verify):
            continue
        if c["prompt"] not in state.verified and all(c["prompt"] != x["prompt"] for x in chosen):
            chosen.append(c)
            extra += not c["predicted_flip"]
    if not chosen:
        return []
    originals, variants = scorer.generate([c["prompt"] for c in chosen], config.max_new_tokens)
    return [judge_pair(config, c, o, v) for c, o, v in zip(chosen, originals, variants)]


def judge_pair(config: SearchConfig, candidate: dict, original: str, variant: str) -> dict:
    """A verification row: both responses, their judgements, and whether (and why) they diverge."""
    refusal, keyword = get_judge("refusal"), KeywordJudge(tuple(config.keywords))
    judged = [refusal.judge(text, prompt=candidate["prompt"]).outcome for text in (original, variant)]
    found = [keyword.judge(text).outcome == PRESENT for text in (original, variant)]
    why = ""
    if set(judged) == {REFUSAL, COMPLIANCE}:
        why = f"refusal flip: original {judged[0]}, variant {judged[1]}"
    elif found[1] and not found[0]:
        why = "keyword appears in the variant's response"
    return {"prompt": candidate["prompt"], "kind": candidate["kind"], "seed_id": candidate["seed_id"],
            "objective": candidate["objective"], "original": original, "variant": variant,
            "judged_original": judged[0], "judged_variant": judged[1], "keyword_original": found[0],
            "keyword_variant": found[1], "divergent": bool(why), "why": why}
