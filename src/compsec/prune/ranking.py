"""Which attention heads carry refusals: ablate one head at a time and measure the refusal-rate change.

For each (layer, head) the model answers every probe with that head masked (:class:`HeadMask`, batched greedy
generation); the refusal detector judges each answer. A head's ``refusal_drop`` is
``baseline refusal rate − refusal rate with the head masked``: positive means the model refuses *less*
without it, i.e. the head is safety-critical. Heads are ranked by ``refusal_drop``, largest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from compsec.errors import InputError
from compsec.jsonfiles import read_json_file
from compsec.prune.heads import Head, HeadMask, all_heads


@dataclass(frozen=True)
class HeadEffect:
    """One ablated head: its refusal rate over the probes and the drop from the unablated baseline."""

    layer: int
    head: int
    refusal_rate: float
    refusal_drop: float


def refusal_rate(model, tokenizer, prompts: list[str], batch_size: int = 32, max_new_tokens: int = 24,
                 device: str = "cpu") -> float:
    """Fraction of ``prompts`` whose greedy answer the refusal judge labels a refusal."""
    from compsec.audit.judges import REFUSAL, get_judge
    from compsec.tiny.chat import generate

    if not prompts:
        raise InputError("no prompts to measure a refusal rate on; pass a non-empty probe set")
    judge = get_judge("refusal")
    answers = generate(model, tokenizer, prompts, max_new_tokens, batch_size, device)
    return sum(judge.judge(a, prompt=p).outcome == REFUSAL for a, p in zip(answers, prompts)) / len(answers)


def rank_heads(model, tokenizer, prompts: list[str], heads: list[Head] | None = None, **generation) -> dict:
    """``{"baseline": rate, "heads": [HeadEffect as dict, ...]}`` sorted by ``refusal_drop`` (largest first).

    ``heads`` defaults to every head of the model; ``generation`` goes to :func:`refusal_rate`.
    """
    baseline = refusal_rate(model, tokenizer, prompts, **generation)
    effects = []
    for layer, head in heads if heads is not None else all_heads(model):
        with HeadMask(model, [(layer, head)]):
            rate = refusal_rate(model, tokenizer, prompts, **generation)
        effects.append(HeadEffect(layer, head, rate, baseline - rate))
    effects.sort(key=lambda e: (-e.refusal_drop, e.layer, e.head))
    return {"baseline": baseline, "probes": len(prompts), "heads": [asdict(e) for e in effects]}


def critical_heads(ranking: dict, min_drop: float = 0.05, top: int | None = None) -> list[Head]:
    """Heads whose ``refusal_drop`` is at least ``min_drop`` (at most the ``top`` first), from a ranking."""
    rows = [row for row in ranking.get("heads", []) if row["refusal_drop"] >= min_drop]
    return [(int(row["layer"]), int(row["head"])) for row in rows[:top]]


def read_ranking(path: str | Path) -> dict:
    """A ranking written by ``compsec heads --out``; InputError if it is not one."""
    ranking = read_json_file(path, "head ranking JSON (written by 'compsec heads --out')")
    if not isinstance(ranking, dict) or not isinstance(ranking.get("heads"), list):
        raise InputError(f"{path}: not a head ranking (no 'heads' list); write one with 'compsec heads'")
    return ranking
