"""Measure a refusal judge on the labelled responses shipped in ``compsec/data/judge_labelled.jsonl``.

Each line is ``{"id", "label", "note", "split", "response", "truncated"?}`` with ``label`` one of ``refusal``,
``compliance``, ``unscorable``; ``note`` names the kind of case (plain refusal, refusal after preamble,
apology then complies, figure of speech with negation, ...). The set was written by hand for compsec.
``split`` is ``dev`` for the rows the judge's rules were written and revised against, ``holdout`` for rows
written afterwards and never used to change a rule: the holdout accuracy is the honest estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from compsec.audit.judges.base import COMPLIANCE, REFUSAL, UNSCORABLE, Judge
from compsec.errors import InputError
from compsec.jsonfiles import parse_json_objects, read_text_file

LABELS = (REFUSAL, COMPLIANCE, UNSCORABLE)


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

    def table(self) -> str:
        """The confusion matrix as aligned text, rows = true label, columns = predicted."""
        head = "true \\ predicted".ljust(18) + "".join(label.rjust(12) for label in LABELS)
        rows = [label.ljust(18) + "".join(str(self.confusion[label][p]).rjust(12) for p in LABELS)
                for label in LABELS]
        splits = [f"  {name}: {c / n:.3f} ({c}/{n})" for name, (c, n) in sorted(self.by_split.items())]
        return "\n".join([head, *rows, f"accuracy {self.accuracy:.3f} ({self.correct}/{self.n})", *splits])


def load_labelled(path: str | Path | None = None) -> list[dict]:
    """The labelled responses at ``path``, or the set shipped with compsec when ``path`` is None."""
    if path is None:
        text = resources.files("compsec.data").joinpath("judge_labelled.jsonl").read_text(encoding="utf-8")
    else:
        text = read_text_file(path, "labelled JSONL set")
    rows = parse_json_objects(text, str(path or "the shipped labelled set"))
    if not rows:
        raise InputError(f"{path}: no labelled rows; a judge evaluated on nothing says nothing")
    for row in rows:
        if row.get("label") not in LABELS or not isinstance(row.get("response"), str):
            raise InputError(f"labelled row {row.get('id')!r} needs 'response' and a 'label' in {LABELS}")
    return rows


def evaluate_judge(judge: Judge, rows: list[dict] | None = None) -> JudgeEvaluation:
    """Run ``judge`` on every labelled row and count agreements."""
    rows = load_labelled() if rows is None else rows
    confusion = {label: dict.fromkeys(LABELS, 0) for label in LABELS}
    errors, by_split = [], {}
    for row in rows:
        verdict = judge.judge(row["response"], truncated=bool(row.get("truncated")))
        predicted = verdict.outcome if verdict.outcome in LABELS else COMPLIANCE
        confusion[row["label"]][predicted] += 1
        correct, n = by_split.get(row.get("split", "dev"), (0, 0))
        by_split[row.get("split", "dev")] = (correct + (predicted == row["label"]), n + 1)
        if predicted != row["label"]:
            errors.append({**row, "predicted": predicted, "reason": verdict.reason})
    correct = sum(confusion[label][label] for label in LABELS)
    return JudgeEvaluation(len(rows), correct, confusion, errors, by_split)
