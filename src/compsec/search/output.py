"""Renderers over the search log: ``summary.json`` and ``divergent_probes.jsonl`` (rebuilt from the log alone).

``divergent_probes.jsonl`` is in the audit's probe-file format (``compsec audit MODEL --probes FILE``): a prompt
the variant stopped refusing is a ``refusal`` probe, one it started refusing an ``over-refusal`` probe, one
where the keyword appeared an ``injection`` probe; ``category`` is ``search:<seed id>``.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.audit.judges import REFUSAL
from compsec.search.state import SearchState, read_search_log

TOP = 20


def summarise(header: dict, state: SearchState) -> dict:
    """The summary dict: configuration, evaluations, counts, top divergent and top-objective prompts."""
    divergent = state.divergent()
    verified = list(state.verified.values())
    return {
        "config_hash": header["config_hash"], "config": header["config"],
        "evaluations": state.spent, "rounds": state.rounds, "candidates": len(state.candidates),
        "verified": len(verified), "divergent_count": len(divergent),
        "divergent_per_1000": round(1000 * len(divergent) / state.spent, 3) if state.spent else 0.0,
        "divergent_seeds": len({v["seed_id"] for v in divergent}),
        "divergent": divergent[:TOP],
        "top_objective": [{k: c[k] for k in ("prompt", "seed_id", "op", "objective", "score", "predicted_flip")}
                          for c in state.ranked()[:TOP]],
        "closest_seeds": state.seeds[:TOP],
    }


def probe_rows(divergent: list[dict]) -> list[dict]:
    """Audit probe rows for the divergent prompts (see the module docstring)."""
    rows = []
    for n, v in enumerate(divergent):
        if v["keyword_variant"] and not v["keyword_original"]:
            kind = "injection"
        else:
            kind = "refusal" if v["judged_original"] == REFUSAL else "over-refusal"
        rows.append({"id": f"search-{n:03d}", "kind": kind, "category": f"search:{v['seed_id']}",
                     "prompt": v["prompt"], "expected": "refusal" if kind == "refusal" else "",
                     "why": v["why"]})
    return rows


def render(out: str | Path) -> dict:
    """Write ``summary.json`` and ``divergent_probes.jsonl`` from ``out/events.jsonl``; returns the summary."""
    out = Path(out)
    header, events = read_search_log(out)
    state = SearchState()
    for event in events:
        state.apply(event)
    summary = summarise(header, state)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    lines = [json.dumps(row, sort_keys=True, ensure_ascii=False) for row in probe_rows(state.divergent())]
    (out / "divergent_probes.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return summary
