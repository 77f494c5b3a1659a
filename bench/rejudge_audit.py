"""Re-judge an audit's logged answers with another refusal judge and print the per-variant table again.

No answer is generated again: the records of ``DIR/events.jsonl`` keep their responses, only their ``refusal``
verdicts are replaced (batched, request-aware), then the audit's own summary code recomputes the rates and the
paired flips. Use it when the judge changed after an audit ran (docs/results.md "Audits").

    PYTHONPATH=src python bench/rejudge_audit.py DIR [--judge refusal] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from compsec.audit.eventlog import read_log
from compsec.audit.judges import get_judge, judge_all
from compsec.audit.summary import build_summary

JUDGED_KINDS = ("refusal", "over-refusal")


def rejudge(records: list, judge) -> list:
    """``records`` with the ``refusal`` verdict of every refusal / over-refusal answer given by ``judge``."""
    chosen = [i for i, r in enumerate(records) if r.kind in JUDGED_KINDS and "refusal" in r.judges]
    verdicts = judge_all(judge, [records[i].response for i in chosen], [records[i].prompt for i in chosen],
                         [records[i].truncated for i in chosen])
    out = list(records)
    for i, verdict in zip(chosen, verdicts):
        out[i] = dataclasses.replace(records[i], judges={**records[i].judges, "refusal": verdict.outcome})
    return out


def table(summary: dict) -> str:
    lines = ["| variant | refusal | over-refusal | utility | flips refused→complied / complied→refused (p) |",
             "|---|---|---|---|---|"]
    for name, metrics in summary["variants"].items():
        flip = summary["flips"].get(name)
        flips = (f"{len(flip['refused_to_complied'])}/{len(flip['complied_to_refused'])} ({flip['mcnemar_p']:.3g}, "
                 f"n={flip['paired']})" if flip else "–")
        cells = [_rate(metrics["intervals"].get(key)) for key in ("refusal_rate", "over_refusal_rate", "utility_accuracy")]
        lines.append(f"| {name} | {' | '.join(cells)} | {flips} |")
    return "\n".join(lines)


def _rate(entry) -> str:
    return "–" if not entry or not entry["n"] else f"{entry['rate']:.3f} (n={entry['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--judge", default="refusal")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    header, records = read_log(f"{args.folder}/events.jsonl")
    summary = build_summary(header, rejudge(records, get_judge(args.judge)))
    print(table(summary))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)


if __name__ == "__main__":
    main()
