"""Text normalisation shared by the judges, and the checks that make a response unscorable.

``normalise`` maps a response to a canonical form before any pattern runs: Unicode NFKC (full-width letters,
ligatures), typographic quotes and apostrophes to ASCII, dashes to ``-``, lower case, whitespace collapsed.
So ``"I CAN’T  help"`` and ``"i can't help"`` read the same to every rule.
"""

from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u02bc": "'", "`": "'",
    "\u00b4": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": " ",
})
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9']+")
_PLAIN = set(" .,;:!?'\"()-+=*/%")


def normalise(text: str) -> str:
    """Canonical form of ``text``: NFKC, ASCII quotes, lower case, single spaces, stripped."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACE.sub(" ", text.casefold()).strip()


def words(text: str) -> list[str]:
    """The lower-case words of an already normalised text (letters, digits, apostrophes)."""
    return _WORD.findall(text)


def unscorable_reason(text: str, truncated: bool = False, min_words: int = 2) -> str | None:
    """Why a normalised response cannot be judged, or None when it can.

    Empty or near-empty text, text that is mostly not words (garbled), text dominated by one repeated word or
    phrase (a degenerate loop), and a response cut off by the token limit before ``min_words`` words.
    """
    tokens = words(text)
    if not tokens:
        return "empty"
    if truncated and len(tokens) < min_words:
        return "truncated"
    if len(tokens) < min_words and len(text) < 4:
        return "too short"
    if _garbled(text, tokens):
        return "garbled"
    if _repetitive(tokens):
        return "repetitive"
    return None


def _garbled(text: str, tokens: list[str]) -> bool:
    plain = sum(ch.isalnum() or ch in _PLAIN for ch in text)
    if plain < 0.6 * len(text):
        return True
    vowelless = sum(1 for t in tokens if t.isalpha() and len(t) >= 3 and not re.search(r"[aeiouy]", t))
    return len(tokens) >= 4 and vowelless > 0.5 * len(tokens)


def _repetitive(tokens: list[str]) -> bool:
    """True when one word fills most of a long response or an n-gram (n <= 4) repeats back to back 4+ times."""
    if len(tokens) < 6:
        return False
    top = max(tokens.count(t) for t in set(tokens))
    if top >= 0.5 * len(tokens):
        return True
    for n in range(1, 5):
        for start in range(len(tokens) - 4 * n + 1):
            gram = tokens[start:start + n]
            if all(tokens[start + k * n:start + (k + 1) * n] == gram for k in range(1, 4)):
                return True
    return False
