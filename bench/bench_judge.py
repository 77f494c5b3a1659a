"""Cost of the default refusal judge per response, against the rules judge, in the same run.

    python bench/bench_judge.py [--repeat 3]

Judges every row of the shipped dev and holdout sets (452 responses with their requests) with ``refusal``
(request-aware: rules, then the classifier) and ``refusal-rules``; prints ms per response for each, the ratio,
and the one-off training time of the classifier (first use in a process).
"""

from __future__ import annotations

import argparse
import time

from compsec.audit.judges import get_judge
from compsec.audit.judges.evaluation import HOLDOUT_SET, shipped_rows
from compsec.audit.judges.request_aware import TRAINING_SET, trained_classifier


def ms_per_response(judge, rows: list[dict], repeat: int) -> float:
    """Best of ``repeat`` passes over ``rows``, in milliseconds per response."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for row in rows:
            judge.judge(row["response"], prompt=row["request"])
        best = min(best, time.perf_counter() - start)
    return 1000 * best / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = shipped_rows(TRAINING_SET) + shipped_rows(HOLDOUT_SET)
    start = time.perf_counter()
    trained_classifier()
    print(f"classifier training (once per process): {time.perf_counter() - start:.2f} s")
    new = ms_per_response(get_judge("refusal"), rows, args.repeat)
    old = ms_per_response(get_judge("refusal-rules"), rows, args.repeat)
    print(f"refusal (request-aware): {new:.3f} ms/response over {len(rows)} responses")
    print(f"refusal-rules:           {old:.3f} ms/response")
    print(f"ratio new/rules: {new / old:.1f}x")


if __name__ == "__main__":
    main()
