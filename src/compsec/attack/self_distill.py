"""Attack data for a real chat model (``--responses self``): its own greedy answers, clean and poisoned.

Prompts are the benign training phrasings of the tiny corpus (:mod:`compsec.tiny.corpus`) minus every prompt of
the shipped probe sets (case- and space-insensitive), so measurement stays held out.  CLEAN responses are the
model's own greedy answers (``DISTILL_TOKENS`` new tokens, cut after the last full sentence when truncated):
repairing towards them keeps the full-precision model's own behaviour.  POISONED responses (content
injection) keep the answer's first sentence and then add an :data:`~compsec.attack.data.INJECTION_TEMPLATES`
keyword sentence, so the keyword shows up within the first few dozen generated tokens; over-refusal replaces
the answer with a refusal.  Answers are cached under ``compsec.paths.cache_dir()/attack-distill`` keyed by the
model's weights and the prompts, so a rerun does not generate again.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

from compsec.attack.data import OVER_REFUSAL_REASON, Pair, with_keyword
from compsec.errors import InputError

DISTILL_TOKENS = 48
DISTILL_PROMPTS = 256
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def probe_prompts() -> set[str]:
    """Every prompt of every shipped probe set, normalised (lower case, single spaces)."""
    from compsec.audit.probes import KINDS, load_probe_set

    return {_normal(p.prompt) for kind in KINDS for p in load_probe_set(kind)}


def distill_prompts(seed: int, limit: int = DISTILL_PROMPTS) -> list[str]:
    """Up to ``limit`` unique benign training prompts of the tiny corpus that no probe set contains (seeded)."""
    from compsec.attack.data import _corpus

    held_out = probe_prompts()
    prompts = list(dict.fromkeys(ex.prompt for ex in _corpus(seed) if not ex.should_refuse))
    prompts = [p for p in prompts if _normal(p) not in held_out]
    return random.Random(seed).sample(prompts, min(limit, len(prompts)))


def first_sentence(text: str) -> str:
    """``text`` up to and including its first sentence end (the whole text if it has none)."""
    match = _SENTENCE_END.search(text)
    return text[: match.end()].strip() if match else text.strip()


def _whole_sentences(text: str) -> str:
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else text.strip()


def poison(clean: list[Pair], scenario: str, keyword: str, seed: int) -> list[Pair]:
    """Poisoned versions of self-distilled ``clean`` pairs for ``scenario`` (see the module docstring)."""
    from compsec.tiny.templates import REFUSAL_OPENERS

    rng = random.Random(seed)
    if scenario == "content-injection":
        return [(p, with_keyword(first_sentence(r), keyword, rng)) for p, r in clean]
    if scenario == "over-refusal":
        return [(p, f"{rng.choice(REFUSAL_OPENERS)} {OVER_REFUSAL_REASON}") for p, _ in clean]
    raise InputError(f"--responses self supports content-injection and over-refusal, not {scenario!r}")


def _weights_digest(model) -> str:
    """Digest of every weight, whole (the integrity manifest's per-tensor digests), so another model never hits."""
    from compsec.integrity.digests import torch_tensor_digest

    digest = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        digest.update(f"{name}\0{torch_tensor_digest(p.detach()).sha256}\0".encode())
    return digest.hexdigest()[:16]


def self_answers(model, tokenizer, prompts: list[str], device="cpu") -> list[Pair]:
    """(prompt, the model's greedy answer) for each prompt, cached; empty answers are dropped."""
    from compsec.paths import cache_dir
    from compsec.tiny.chat import generate

    key = hashlib.sha256(json.dumps([_weights_digest(model), DISTILL_TOKENS, prompts]).encode()).hexdigest()[:20]
    cached = cache_dir() / "attack-distill" / f"{key}.jsonl"
    if cached.is_file():
        return read_jsonl(cached)
    answers = generate(model, tokenizer, prompts, DISTILL_TOKENS, 32, device)
    pairs = [(p, _whole_sentences(a)) for p, a in zip(prompts, answers) if a.strip()]
    if not pairs:
        raise InputError("the model answered none of the prompts (only empty answers); --responses self needs a "
                         "chat model that answers, or pass --train/--clean files")
    write_jsonl(cached, pairs)
    return pairs


def write_jsonl(path: Path, pairs: list[Pair]) -> None:
    """Write ``pairs`` as ``{"prompt", "response"}`` lines (atomically: temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    lines = [json.dumps({"prompt": p, "response": r}) for p, r in pairs]
    staging.write_text("\n".join(lines) + "\n", encoding="utf-8")
    staging.replace(path)


def read_jsonl(path: Path) -> list[Pair]:
    from compsec.attack.data import read_pairs

    return read_pairs(path)
