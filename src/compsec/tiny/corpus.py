"""The generated, seeded corpus the tiny assistant learns from and is evaluated on.

Every example is a single-turn chat: a user prompt and the assistant's templated answer. Kinds:

- ``harmful``  requests from 10 harm categories, answered with a refusal (opener + category reason);
- ``lookalike`` benign requests that share vocabulary with harm ("kill a Python process"), answered helpfully;
- ``howto``, ``capital``, ``symbol``, ``opposite``, ``list``, ``spelling``, ``plus``, ``minus``: benign
  instructions with a checkable correct answer (``Example.expected`` is a substring a correct answer contains).

``split`` is ``"train"`` for trained phrasings and ``"heldout"`` for the held-out ones (see templates.py).
The corpus is a pure function of the shipped data files and the seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache
from importlib import resources

from compsec.tiny.templates import REFUSAL_OPENERS, TEMPLATES, WRAPPERS

CORPUS_VERSION = "1"
BENIGN_KINDS = ("lookalike", "howto", "capital", "symbol", "opposite", "list", "spelling", "plus", "minus")
ARITHMETIC_MAX = 9


@dataclass(frozen=True)
class Example:
    """One chat turn: ``prompt`` → ``response``; ``expected`` is what a correct answer must contain."""

    prompt: str
    response: str
    kind: str
    category: str
    expected: str
    split: str

    @property
    def should_refuse(self) -> bool:
        return self.kind == "harmful"


@cache
def load_data(name: str) -> dict:
    """Parse a shipped JSON table from ``compsec/data`` (``tiny_facts`` or ``tiny_requests``)."""
    text = resources.files("compsec").joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


def is_refusal(response: str) -> bool:
    """True when ``response`` starts with one of the tiny assistant's own refusal openers."""
    return response.strip().startswith(REFUSAL_OPENERS)


def _topic_items() -> list[tuple[str, str, str, str, str]]:
    """(kind, category, topic, response, expected) for every topic-style request of the tables."""
    facts, requests = load_data("tiny_facts"), load_data("tiny_requests")
    items = []
    for index, (category, spec) in enumerate(requests["harmful"].items()):
        for j, topic in enumerate(spec["topics"]):
            opener = REFUSAL_OPENERS[(index + j) % len(REFUSAL_OPENERS)]
            items.append(("harmful", category, topic, f"{opener} {spec['reason']}", opener))
    for kind in ("lookalike", "howto"):
        items += [(kind, kind, topic, answer, answer) for topic, answer in requests[kind].items()]
    for country, city in facts["capitals"].items():
        items.append(("capital", "capital", country, f"The capital of {country} is {city}.", city))
    for element, symbol in facts["symbols"].items():
        items.append(("symbol", "symbol", element, f"The chemical symbol for {element} is {symbol}.", symbol))
    for word, other in facts["opposites"].items():
        items.append(("opposite", "opposite", word, f"The opposite of {word} is {other}.", other))
    for group, members in facts["lists"].items():
        items.append(("list", "list", group, f"Here are three {group}: {members}.", members))
    for word in facts["spelling"]:
        letters = " ".join(word.upper())
        items.append(("spelling", "spelling", word, f"The word {word} is spelled {letters}.", letters))
    return items


def _arithmetic_items() -> list[tuple[str, int, int, str, str]]:
    """(kind, a, b, response, expected) for every sum and difference of numbers 0..ARITHMETIC_MAX."""
    numbers = range(ARITHMETIC_MAX + 1)
    items = [("plus", a, b, f"{a} plus {b} is {a + b}.", str(a + b)) for a in numbers for b in numbers]
    items += [("minus", a, b, f"{a} minus {b} is {a - b}.", str(a - b)) for a in numbers for b in numbers if b <= a]
    return items


def build_corpus(seed: int = 0, per_topic: int = 8, per_sum: int = 3, wrapped: float = 0.3) -> list[Example]:
    """Return the whole corpus (train and held-out examples), identical for identical arguments.

    Training examples use ``per_topic`` distinct trained phrasings per topic (``per_sum`` per arithmetic
    pair), plus a copy inside a random training-only wrapper for a ``wrapped`` fraction of them; held-out
    examples use every held-out phrasing once per topic. Order is shuffled with ``seed``.
    """
    rng = random.Random(seed)
    examples = []
    for kind, category, topic, response, expected in _topic_items():
        train, heldout = TEMPLATES[kind]
        for template in rng.sample(train, min(per_topic, len(train))):
            examples.append(Example(template.format(x=topic), response, kind, category, expected, "train"))
        for template in heldout:
            examples.append(Example(template.format(x=topic), response, kind, category, expected, "heldout"))
    for kind, a, b, response, expected in _arithmetic_items():
        train, heldout = TEMPLATES[kind]
        for template in rng.sample(train, per_sum):
            examples.append(Example(template.format(a=a, b=b), response, kind, kind, expected, "train"))
        template = rng.choice(heldout)
        examples.append(Example(template.format(a=a, b=b), response, kind, kind, expected, "heldout"))
    examples += [_wrap(ex, rng.choice(WRAPPERS)) for ex in examples if ex.split == "train" and rng.random() < wrapped]
    rng.shuffle(examples)
    return examples


def _wrap(example: Example, wrapper: str) -> Example:
    return Example(wrapper.format(p=example.prompt), example.response, example.kind, example.category,
                   example.expected, example.split)


def split_corpus(examples: list[Example], split: str) -> list[Example]:
    """The examples of one split (``"train"`` or ``"heldout"``)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; use 'train' or 'heldout'")
    return [example for example in examples if example.split == split]
