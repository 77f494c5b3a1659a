"""lm-eval outputs turned into compsec's paired view, ``lm_eval.json``, and the ``lm_eval`` key of summary.json.

Payload layout (scores are lm-eval's own; "none" filter suffixes dropped, other filters kept as
``metric,filter``)::

    {"lm_eval_version": "0.4.13", "model": "...", "tasks": [...], "limit": null, "chat_template": true,
     "variants": {"original": {"compsec_utility_mc": {"acc": 0.93, "acc_stderr": 0.03, "n": 60}}, "nf4": ...},
     "flips": {"nf4": {"compsec_utility_mc": {"acc": {"lost": [doc ids], "gained": [...], "paired": 60,
                                                       "mcnemar_p": 0.5}}}},
     "seconds": {"original": 12.1, "nf4": 13.4}}

``lost`` are documents the original got right (metric 1) and the variant got wrong (metric 0); only metrics
whose per-document values are all 0 or 1 are paired. ``seconds`` (wall time per variant) stays out of
summary.json, which is deterministic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from compsec.audit.stats import mcnemar_exact

ORIGINAL = "original"


def build_payload(run, outputs: dict[str, dict], seconds: dict[str, float], version: str) -> dict:
    """The ``lm_eval.json`` dict from ``{variant: simple_evaluate output}`` (``original`` first)."""
    documents = {name: document_metrics(output) for name, output in outputs.items()}
    original = documents.get(ORIGINAL, {})
    return {
        "lm_eval_version": version, "model": run.model, "tasks": list(run.tasks), "limit": run.limit,
        "chat_template": run.chat_template,
        "variants": {name: task_scores(output) for name, output in outputs.items()},
        "flips": {name: task_flips(original, docs) for name, docs in documents.items() if name != ORIGINAL},
        "seconds": seconds,
    }


def task_scores(output: dict) -> dict[str, dict]:
    """``{task: {metric: value, metric_stderr: value | None, "n": documents}}`` from lm-eval's results."""
    scores = {}
    for task, row in output["results"].items():
        entry = {}
        for key, value in row.items():
            if "," not in key:
                continue
            metric, _, filter_name = key.partition(",")
            name = metric if filter_name == "none" else f"{metric},{filter_name}"
            entry[name] = _number(value)
        entry["n"] = int(output.get("n-samples", {}).get(task, {}).get("effective", len(_samples(output, task))))
        scores[task] = entry
    return scores


def document_metrics(output: dict) -> dict[str, dict[str, dict[int, float]]]:
    """``{task: {metric: {doc_id: value}}}`` from the logged samples (first filter of each task)."""
    per_task = {}
    for task in output["results"]:
        metrics: dict[str, dict[int, float]] = {}
        samples = _samples(output, task)
        first_filter = samples[0]["filter"] if samples else None
        for sample in samples:
            if sample["filter"] != first_filter:
                continue
            for metric in sample["metrics"]:
                value = _number(sample.get(metric))
                if value is not None:
                    metrics.setdefault(metric, {})[int(sample["doc_id"])] = value
        per_task[task] = metrics
    return per_task


def task_flips(original: dict, variant: dict) -> dict[str, dict]:
    """Per task and binary metric: documents lost / gained against the original, with exact McNemar."""
    flips = {}
    for task, metrics in variant.items():
        for metric, values in metrics.items():
            before = original.get(task, {}).get(metric, {})
            common = sorted(set(before) & set(values))
            if not common or not _binary([before[d] for d in common] + [values[d] for d in common]):
                continue
            lost = [d for d in common if before[d] == 1 and values[d] == 0]
            gained = [d for d in common if before[d] == 0 and values[d] == 1]
            flips.setdefault(task, {})[metric] = {"lost": lost, "gained": gained, "paired": len(common),
                                                  "mcnemar_p": mcnemar_exact(len(lost), len(gained))}
    return flips


def write_results(out: str | Path, payload: dict) -> Path:
    """Write ``out/lm_eval.json``; if ``out/summary.json`` exists, put the payload (less timings) under its
    ``lm_eval`` key. Returns the lm_eval.json path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "lm_eval.json"
    target.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    summary_path = out / "summary.json"
    if summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        summary["lm_eval"] = {key: value for key, value in payload.items() if key != "seconds"}
        summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def _samples(output: dict, task: str) -> list[dict]:
    return output.get("samples", {}).get(task, [])


def _binary(values: list[float]) -> bool:
    return all(v in (0.0, 1.0) for v in values)


def _number(value) -> float | None:
    """A JSON-safe float (numpy scalars included); None for lm-eval's "N/A" and for NaN."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number
