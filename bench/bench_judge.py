"""Cost of the refusal judges per response, against the rules judge, in the same run.

    python bench/bench_judge.py [--limit 96] [--repeat 3]

Judges the first ``--limit`` rows of the shipped dev + holdout sets (responses with their requests) with
``refusal`` (rules, then SmolLM2's hidden states read by a linear probe; one response at a time, as the audit
calls it, and batched through ``judge_many``), ``refusal-tfidf`` (rules, then TF-IDF) and ``refusal-rules``;
prints ms per response for each (the judge's per-process memo emptied before every timed call), the ratio to the rules, how many responses reached SmolLM2 (the rules decide
explicit refusals first), and the one-off load of SmolLM2 and the probe in a process.
"""

from __future__ import annotations

import argparse
import time

from compsec.audit.judges import get_judge, hidden_state
from compsec.audit.judges.evaluation import HOLDOUT_SET, shipped_rows
from compsec.audit.judges.hidden_state import trained_probe
from compsec.audit.judges.request_aware import TRAINING_SET, trained_classifier
from compsec.audit.judges.smollm_features import truncated_smollm


def ms_per_response(judge_rows, rows: list[dict], repeat: int) -> float:
    """Best of ``repeat`` calls of ``judge_rows(rows)``, in milliseconds per response (the per-process memo of
    p(refusal) is emptied before each call: the cost of responses never seen, not of memo hits)."""
    best = float("inf")
    for _ in range(repeat):
        hidden_state._SEEN.clear()
        start = time.perf_counter()
        judge_rows(rows)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(rows)


def one_by_one(judge):
    return lambda rows: [judge.judge(r["response"], prompt=r["request"]) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=96, help="responses judged (the model judge is the slow one)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = (shipped_rows(TRAINING_SET) + shipped_rows(HOLDOUT_SET))[::3][:args.limit]  # every 3rd: all kinds
    start = time.perf_counter()
    truncated_smollm(), trained_probe(), trained_classifier()
    print(f"load SmolLM2 + probe, train TF-IDF (once per process): {time.perf_counter() - start:.2f} s")
    smollm, tfidf, rules = get_judge("refusal"), get_judge("refusal-tfidf"), get_judge("refusal-rules")
    read = sum(r.reason.startswith("smollm") for r in one_by_one(smollm)(rows))
    batched = ms_per_response(lambda rs: smollm.judge_many([r["response"] for r in rs],
                                                           prompts=[r["request"] for r in rs]), rows, args.repeat)
    single = ms_per_response(one_by_one(smollm), rows, args.repeat)
    old = ms_per_response(one_by_one(tfidf), rows, args.repeat)
    base = ms_per_response(one_by_one(rules), rows, args.repeat)
    print(f"{len(rows)} responses, {read} read by SmolLM2 (the rest decided by the rules)")
    for name, ms in [("refusal (smollm, one by one)", single), ("refusal (smollm, judge_many)", batched),
                     ("refusal-tfidf", old), ("refusal-rules", base)]:
        print(f"{name:30s} {ms:9.3f} ms/response  {ms / base:8.1f}x rules")


if __name__ == "__main__":
    main()
