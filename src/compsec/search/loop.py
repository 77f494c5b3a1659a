"""``run_search``: load the pair of models, replay the log, run rounds until the budget is spent, render.

>>> from compsec.search import SearchConfig, run_search
>>> result = run_search(SearchConfig(model="path/to/model", variant="nf4", budget=1000, out="search-out"))
>>> result.summary["divergent"]          # verified divergent prompts, both responses, best first
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.search.config import SearchConfig
from compsec.search.scoring import PairScorer
from compsec.search.state import SearchLog

SEED_KINDS = ("refusal", "over-refusal", "injection")


@dataclass
class SearchResult:
    """Where the search wrote and its summary dict."""

    out: Path
    summary: dict


def load_seeds(config: SearchConfig) -> list:
    """The generation probes (refusal, over-refusal, injection) of ``config.seeds``, at most ``seed_limit`` per set."""
    from compsec.audit.probes import load_probe_sets

    probes = [p for p in load_probe_sets(list(config.seeds), config.seed_limit) if p.kind in SEED_KINDS]
    if not probes:
        raise InputError(f"seed sets {', '.join(config.seeds)} hold no prompts of kind {', '.join(SEED_KINDS)}")
    return probes


def load_pair(config: SearchConfig, model=None, tokenizer=None) -> PairScorer:
    """The original (loaded, or given) and a compressed deep copy of it as ``config.variant``."""
    from compsec.survival.compress import compressed_copy

    if model is None:
        from compsec.models.io import load_model

        model, tokenizer = load_model(config.model, device=config.device)
    variant, notes = compressed_copy(model, config.variant)
    if notes.get("unquantized") and len(notes["unquantized"]) == len(_linear_names(model)):
        raise InputError(f"format {config.variant!r} cannot store any of this model's weight shapes; pick another")
    return PairScorer(model.eval(), variant.eval(), tokenizer, config.refusal_openings, config.device,
                      config.batch_size)


def _linear_names(model) -> list[str]:
    from compsec.survival.compress import linear_weights

    return list(linear_weights(model))


def run_search(config: SearchConfig, *, model=None, tokenizer=None,
               on_round: Callable[[dict], None] | None = None) -> SearchResult:
    """Run (or resume) the search of ``config``; ``on_round(event)`` is called after each logged round."""
    from compsec.search.gradient import allowed_tokens
    from compsec.search.output import render
    from compsec.search.rounds import search_round, seed_round

    seeds = load_seeds(config)
    if config.budget < len(seeds) + min(config.pool, len(seeds)):
        raise InputError(f"budget {config.budget} is below the seeding cost ({len(seeds)} seeds on the original + "
                         f"{min(config.pool, len(seeds))} on the variant); raise --budget or lower --seed-limit")
    scorer = load_pair(config, model, tokenizer)  # a model compsec refuses stops the run before anything is written
    log = SearchLog.open(config.out, config.hashed())
    state = log.state()
    allowed = allowed_tokens(scorer.tokenizer) if config.children > 1 else None
    torch.manual_seed(config.seed)
    while True:
        event = seed_round(config, scorer, seeds, state) if state.rounds == 0 else \
            search_round(config, scorer, state, allowed)
        if event is None:
            break
        log.append(event)
        state.apply(event)
        if on_round:
            on_round(event)
    return SearchResult(Path(config.out), render(config.out))
