"""Targeted divergence search: look for inputs on which a compressed model departs from the original.

>>> from compsec.search import SearchConfig, run_search
>>> run_search(SearchConfig(model="path/to/model", variant="nf4", objective="refusal-gap", budget=1000))

Pieces: ``config`` (typed options), ``scoring`` (refusal log-prob, margin and first-token KL of both models,
with the evaluation counter), ``objective``, ``gradient`` (GCG-style token substitutions), ``mutate``
(paraphrases, framings), ``rounds`` (one round = one logged event), ``state`` (the resumable log),
``output`` (summary.json, divergent_probes.jsonl), ``baseline`` (random probe sampling at the same budget) and
``digits`` (L-infinity PGD examples that flip only the quantized digits classifier).
"""

__all__ = ["SearchConfig", "SearchResult", "run_search"]


def __getattr__(name: str):
    """Import lazily, so ``import compsec.search`` stays cheap."""
    if name == "SearchConfig":
        from compsec.search.config import SearchConfig

        return SearchConfig
    if name in ("SearchResult", "run_search"):
        from compsec.search import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'compsec.search' has no attribute {name!r}")
