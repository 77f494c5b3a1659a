"""Calibration texts for llm-compressor: a user's JSONL file or compsec's built-in set, and their digest.

Built-in set (``BUILTIN``): the tiny assistant's *training* conversations (:func:`compsec.tiny.corpus.build_corpus`,
seed 0, train split, in corpus order), each as ``"<prompt>\\n<response>"``: harmful requests with their refusals,
benign look-alikes, facts and arithmetic. It never contains the audit's probes (those are separate files).
A user file is JSONL with one ``{"text": "..."}`` object per line. The first ``samples`` texts are used, each
cut to ``max_length`` tokens by llm-compressor; the digest covers exactly those texts and both numbers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError

BUILTIN = "builtin"


@dataclass(frozen=True)
class Calibration:
    """Where the texts come from (``BUILTIN`` or a JSONL path), how many, and their token cap."""

    source: str = BUILTIN
    samples: int = 64
    max_length: int = 128

    def __post_init__(self) -> None:
        if self.samples < 1 or self.max_length < 1:
            raise InputError(f"calibration samples ({self.samples}) and max length ({self.max_length}) "
                             "must be positive")


def builtin_texts() -> list[str]:
    from compsec.tiny.corpus import build_corpus, split_corpus

    return [f"{ex.prompt}\n{ex.response}" for ex in split_corpus(build_corpus(seed=0), "train")]


def file_texts(path: str | Path) -> list[str]:
    """The ``text`` of every non-empty line of a JSONL file; InputError naming the first bad line."""
    from compsec.integrity.path_policy import checked_input

    path = checked_input(path, "calibration JSONL file")
    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise InputError(f"{path}:{number}: expected a JSON object with a non-empty \"text\" string")
        texts.append(item["text"])
    if not texts:
        raise InputError(f"{path}: no calibration texts; write one {{\"text\": ...}} object per line")
    return texts


def calibration_texts(calibration: Calibration) -> list[str]:
    """The texts llm-compressor will see: the first ``samples`` of the chosen source."""
    texts = builtin_texts() if calibration.source == BUILTIN else file_texts(calibration.source)
    return texts[:calibration.samples]


def write_calibration(calibration: Calibration, out_file: Path) -> str:
    """Write the selected texts as JSONL for the side environment; returns their digest (sha256 hex)."""
    texts = calibration_texts(calibration)
    payload = "".join(json.dumps({"text": text}, ensure_ascii=False) + "\n" for text in texts)
    out_file.write_text(payload, encoding="utf-8")
    return calibration_digest(payload, calibration.max_length)


def calibration_digest(jsonl: str, max_length: int) -> str:
    """sha256 over the JSONL payload and the token cap (the sample count is the number of lines)."""
    return hashlib.sha256(f"{max_length}\n{jsonl}".encode()).hexdigest()
