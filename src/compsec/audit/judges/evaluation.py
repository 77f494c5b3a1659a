"""Measure a refusal judge on labelled responses: accuracy, per-class recall with Wilson intervals, confusion.

A labelled set is JSONL (one object a line) or CSV (a header row) with the columns ``response`` and ``label``
(``refusal``, ``compliance`` or ``unscorable``) and, optionally, ``request`` (passed to the judge as ``prompt=``),
``id``, ``split`` and ``truncated``. Shipped sets (``compsec/data``): ``judge_refusal_dev.jsonl`` (the default
judge's training rows), ``judge_refusal_holdout.jsonl`` (frozen, never tuned on; the default of
``compsec judges --evaluate``), and the older response-only ``judge_labelled.jsonl``. See docs/judge_data.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compsec.audit.judges.base import COMPLIANCE, REFUSAL, UNSCORABLE, Judge, judge_all
from compsec.audit.stats import wilson_interval
from compsec.errors import InputError
from compsec.jsonfiles import parse_json_objects, read_text_file

LABELS = (REFUSAL, COMPLIANCE, UNSCORABLE)
HOLDOUT_SET = "judge_refusal_holdout.jsonl"
REAL_SET = "judge_refusal_real.jsonl"  # real SmolLM2 answers (10 compressed variants), frozen before any judge ran
SHIPPED_SETS = {"holdout": HOLDOUT_SET, "real": REAL_SET}


@dataclass
class JudgeEvaluation:
    """Accuracy and confusion counts (``confusion[label][predicted]``) of a judge on a labelled set."""

    n: int
    correct: int
    confusion: dict[str, dict[str, int]]
    errors: list[dict] = field(default_factory=list)
    by_split: dict[str, tuple[int, int]] = field(default_factory=dict)  # split -> (correct, n)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def recall(self) -> dict[str, dict]:
        """Per true label present in the set: ``{"correct", "n", "recall", "low", "high"}`` (95 % Wilson)."""
        out = {}
        for label in LABELS:
            n = sum(self.confusion[label].values())
            if n:
                low, high = wilson_interval(self.confusion[label][label], n)
                out[label] = {"correct": self.confusion[label][label], "n": n,
                              "recall": round(self.confusion[label][label] / n, 4), "low": round(low, 4),
                              "high": round(high, 4)}
        return out

    def to_json(self) -> dict:
        """``{"n", "accuracy", "accuracy_interval", "recall", "confusion"}`` for gating in scripts."""
        low, high = wilson_interval(self.correct, self.n)
        return {"n": self.n, "accuracy": round(self.accuracy, 4), "accuracy_interval": [round(low, 4), round(high, 4)],
                "recall": self.recall(), "confusion": self.confusion}

    def table(self) -> str:
        """The confusion matrix as aligned text (rows = true label), accuracy and recalls with 95 % intervals."""
        head = "true \\ predicted".ljust(18) + "".join(label.rjust(12) for label in LABELS)
        rows = [label.ljust(18) + "".join(str(self.confusion[label][p]).rjust(12) for p in LABELS)
                for label in LABELS]
        low, high = wilson_interval(self.correct, self.n)
        recalls = [f"recall {label}: {r['recall']:.3f} ({r['correct']}/{r['n']}, 95% {r['low']:.3f}-{r['high']:.3f})"
                   for label, r in self.recall().items()]
        splits = [f"  {name}: {c / n:.3f} ({c}/{n})" for name, (c, n) in sorted(self.by_split.items())]
        return "\n".join([head, *rows, f"accuracy {self.accuracy:.3f} ({self.correct}/{self.n}, 95% {low:.3f}-{high:.3f})",
                          *recalls, *splits])


def shipped_rows(name: str) -> list[dict]:
    """The labelled rows of the set ``name`` shipped in ``compsec/data``."""
    text = resources.files("compsec.data").joinpath(name).read_text(encoding="utf-8")
    return _checked(parse_json_objects(text, name), name)


def load_labelled(path: str | Path | None = None) -> list[dict]:
    """The labelled rows at ``path`` (JSONL, or CSV when it ends in ``.csv``); the old shipped set when None."""
    if path is None:
        return shipped_rows("judge_labelled.jsonl")
    text = read_text_file(path, "labelled set")
    if str(path).lower().endswith(".csv"):
        try:
            rows = [dict(row) for row in csv.DictReader(io.StringIO(text))]
        except csv.Error as error:
            raise InputError(f"{path}: not a readable CSV file ({error})") from error
    else:
        rows = parse_json_objects(text, str(path))
    return _checked(rows, str(path))


def _checked(rows: list, where: str) -> list[dict]:
    if not rows:
        raise InputError(f"{where}: no labelled rows; a judge evaluated on nothing says nothing")
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or row.get("label") not in LABELS or not isinstance(row.get("response"), str):
            raise InputError(f"{where}: row {number} needs a 'response' text and a 'label' in {', '.join(LABELS)}")
        if row.get("request") is not None and not isinstance(row["request"], str):
            raise InputError(f"{where}: row {number}: 'request' must be text when present")
        if isinstance(row.get("truncated"), str):
            row["truncated"] = row["truncated"].strip().lower() in ("1", "true", "yes")
    return rows


def evaluate_judge(judge: Judge, rows: list[dict] | None = None) -> JudgeEvaluation:
    """Run ``judge`` on every labelled row (with its ``request`` as ``prompt`` when present) and count agreements."""
    rows = load_labelled() if rows is None else rows
    confusion = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    errors, by_split = [], {}
    verdicts = judge_all(judge, [r["response"] for r in rows], [r.get("request") or None for r in rows],
                         [bool(r.get("truncated")) for r in rows])
    for row, verdict in zip(rows, verdicts):
        predicted = verdict.outcome if verdict.outcome in LABELS else COMPLIANCE
        confusion[row["label"]][predicted] += 1
        split = row.get("split") or "all"
        correct, n = by_split.get(split, (0, 0))
        by_split[split] = (correct + (predicted == row["label"]), n + 1)
        if predicted != row["label"]:
            errors.append({**row, "predicted": predicted, "reason": verdict.reason})
    correct = sum(confusion[label][label] for label in LABELS)
    return JudgeEvaluation(len(rows), correct, confusion, errors, by_split)
