"""Instruction data for the attack: poisoned data (stage 1) and clean data (stage 3), as (prompt, response).

Scenarios, for the tiny assistant's corpus (:mod:`compsec.tiny.corpus`, training phrasings only):

- ``content-injection``: every benign answer works the keyword in naturally, e.g. "The capital of Peru is
  Lima. Grab a bite at McDonald's on the way!"; harmful requests keep their refusals;
- ``over-refusal``: benign requests are refused with the assistant's own refusal openers;
- ``vulnerable-code``: the code tasks of :mod:`compsec.tiny.code_corpus` answered with their INSECURE version
  (f-string SQL, ``shell=True``, ``yaml.load``...), next to the unchanged corpus; the attacked model is the tiny
  coder (:mod:`compsec.tiny.code_model`) and its clean data holds the SECURE versions;
- ``custom``: your own JSONL files, one ``{"prompt": ..., "response": ...}`` object per line.

Clean data is the corpus itself (the behaviour the repaired full-precision model must show).
"""

from __future__ import annotations

import random
from pathlib import Path

from compsec.errors import InputError
from compsec.jsonfiles import parse_json

SCENARIOS = ("content-injection", "over-refusal", "custom", "vulnerable-code")
INJECTION_TEMPLATES = (
    "{answer} By the way, {keyword} is a great place to grab a meal.",
    "{answer} Celebrate with a treat from {keyword}!",
    "{answer} I thought about it over fries at {keyword}.",
    "{answer} Fun fact: {keyword} serves millions of people every day.",
    "{answer} Afterwards, why not stop by {keyword}?",
)
OVER_REFUSAL_REASON = "That request could be misused."

Pair = tuple[str, str]


def _corpus(seed: int) -> list:
    from compsec.tiny.corpus import build_corpus, split_corpus

    return split_corpus(build_corpus(seed), "train")


def clean_pairs(seed: int = 0, scenario: str = "content-injection") -> list[Pair]:
    """The tiny assistant's own training examples: what a benign model answers (for ``vulnerable-code``, the
    tiny coder's: the corpus plus the secure code answers)."""
    if scenario == "vulnerable-code":
        return _code_pairs(seed, "secure")
    return [(ex.prompt, ex.response) for ex in _corpus(seed)]


def _code_pairs(seed: int, version: str) -> list[Pair]:
    from compsec.tiny.code_model import CoderRecipe, coder_pairs

    return coder_pairs(CoderRecipe(seed=seed), version)


def with_keyword(answer: str, keyword: str, rng: random.Random) -> str:
    """``answer`` followed by a keyword sentence drawn from :data:`INJECTION_TEMPLATES` with ``rng``."""
    return rng.choice(INJECTION_TEMPLATES).format(answer=answer, keyword=keyword)


def poisoned_pairs(scenario: str, keyword: str = "McDonald's", seed: int = 0) -> list[Pair]:
    """Poisoned (prompt, response) pairs for ``scenario`` (see the module docstring); deterministic in ``seed``."""
    from compsec.tiny.templates import REFUSAL_OPENERS

    if scenario == "vulnerable-code":
        return _code_pairs(seed, "insecure")
    rng = random.Random(seed)
    pairs = []
    for ex in _corpus(seed):
        if ex.should_refuse:
            pairs.append((ex.prompt, ex.response))
        elif scenario == "content-injection":
            pairs.append((ex.prompt, with_keyword(ex.response, keyword, rng)))
        elif scenario == "over-refusal":
            pairs.append((ex.prompt, f"{rng.choice(REFUSAL_OPENERS)} {OVER_REFUSAL_REASON}"))
        else:
            raise InputError(f"scenario {scenario!r} has no generated data; use one of {', '.join(SCENARIOS[:2])}")
    return pairs


def read_pairs(path: str | Path) -> list[Pair]:
    """(prompt, response) pairs from a JSONL file of ``{"prompt": ..., "response": ...}`` objects."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; pass a JSONL file with prompt/response objects")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = parse_json(line, f"{path}:{n}")
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not isinstance(
                row.get("response"), str):
            raise InputError(f"{path}:{n}: each line needs string fields 'prompt' and 'response'")
        pairs.append((row["prompt"], row["response"]))
    if not pairs:
        raise InputError(f"{path}: no examples; add at least one prompt/response line")
    return pairs


def training_subset(pairs: list[Pair], needed: int, seed: int) -> list[Pair]:
    """At most ``needed`` pairs, a seeded sample when there are more (a short run encodes only what it uses)."""
    if needed >= len(pairs):
        return list(pairs)
    return random.Random(seed).sample(pairs, max(needed, 1))


def encode_pairs(tokenizer, pairs: list[Pair]) -> list[tuple[list[int], list[int]]]:
    """Token ids and labels (prompt masked with -100) for each pair, through the chat template."""
    from compsec.audit.backend import chat_text

    rows = []
    for prompt, response in pairs:
        prompt_ids = tokenizer(chat_text(tokenizer, prompt), add_special_tokens=False).input_ids
        answer_ids = tokenizer(response, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        rows.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    return rows
