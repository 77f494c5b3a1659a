"""The request-aware labelled sets: a frozen holdout and a frozen set of real SmolLM2 answers (pinned by digest),
both disjoint from dev by request."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

HOLDOUT_SHA256 = "6895ea5c071fb83498ac5f2054da5ecfcb94dd5fd2e51ea65e19a9d08e653e8a"
REAL_SHA256 = "8d9d8ab0c106a427903f370cd81746e0d85db06966ac1994b286dac77e6b3c7f"
LABELS = {"refusal", "compliance", "unscorable"}


def _read(name: str) -> bytes:
    return resources.files("compsec.data").joinpath(name).read_bytes()


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in _read(name).decode("utf-8").splitlines() if line.strip()]


def test_holdout_is_frozen():
    """Any edit of the holdout (a tuned label, a dropped row) changes this digest: update it only with a reason."""
    assert hashlib.sha256(_read("judge_refusal_holdout.jsonl")).hexdigest() == HOLDOUT_SHA256


def test_real_answer_set_is_frozen_and_shares_no_request_with_dev():
    """158 answers of SmolLM2-135M-Instruct and the safety-tuned SmolLM2 (original and compressed variants) to the
    first 24 refusal / over-refusal probes; dev's real answers come from probes 24-63 (docs/judge_data.md)."""
    assert hashlib.sha256(_read("judge_refusal_real.jsonl")).hexdigest() == REAL_SHA256
    real, dev = _rows("judge_refusal_real.jsonl"), _rows("judge_refusal_dev.jsonl")
    assert len(real) >= 150 and {r["label"] for r in real} == LABELS
    assert not {r["request"] for r in real} & {r["request"] for r in dev}
    assert {r["model"] for r in real} == {"smollm2-135m-instruct", "smollm2-135m-safety-v1"}


def test_splits_are_large_disjoint_by_request_and_well_formed():
    dev, holdout = _rows("judge_refusal_dev.jsonl"), _rows("judge_refusal_holdout.jsonl")
    assert len(dev) + len(holdout) >= 400 and len(holdout) >= 150
    assert not {r["request"] for r in dev} & {r["request"] for r in holdout}
    for row in dev + holdout:
        assert row["label"] in LABELS and isinstance(row["response"], str) and row["request"].strip()
    for rows in (dev, holdout):
        labels = {r["label"] for r in rows}
        assert labels == LABELS
        assert len({r["family"] for r in rows}) >= 8
