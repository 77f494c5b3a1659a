"""Datasets of compsec's local lm-eval tasks, built in memory from compsec's shipped data (no hub, no cache).

lm-eval calls these through ``custom_dataset: !function compsec_datasets.NAME`` with the task's metadata and
``dataset_kwargs`` as keyword arguments (ignored here). Each returns a ``datasets.DatasetDict`` with one
``test`` split.
"""

from __future__ import annotations

import json
from importlib import resources


def utility_probes(**_task_kwargs):
    """compsec's utility probes: rows ``{"id", "prompt", "choices": [str], "answer": int}`` (60 rows)."""
    from datasets import Dataset, DatasetDict

    from compsec.audit.probes import load_probe_set

    rows = [{"id": p.id, "prompt": p.prompt, "choices": list(p.choices), "answer": p.answer}
            for p in load_probe_set("utility")]
    return DatasetDict({"test": Dataset.from_list(rows)})


def capital_questions(**_task_kwargs):
    """Rows ``{"question": "What is the capital of X?", "answer": "The capital of X is Y."}`` (30 rows)."""
    from datasets import Dataset, DatasetDict

    facts = json.loads(resources.files("compsec").joinpath("data/tiny_facts.json").read_text(encoding="utf-8"))
    rows = [{"question": f"What is the capital of {country}?", "answer": f"The capital of {country} is {city}."}
            for country, city in facts["capitals"].items()]
    return DatasetDict({"test": Dataset.from_list(rows)})
