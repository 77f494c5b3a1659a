"""Hand-written garak report lines in garak 0.17.1's real layout (``Attempt.as_dict`` and the run entries).

Used by the fast garak-bridge tests; the slow test checks the same reader on reports garak itself wrote.
"""

from __future__ import annotations

import json
from pathlib import Path


def message(text: str | None) -> dict | None:
    """A garak ``Message`` as ``dataclasses.asdict`` writes it."""
    if text is None:
        return None
    return {"text": text, "lang": "en", "data_path": None, "data_type": None, "data_checksum": None, "notes": {}}


def attempt(probe: str, seq: int, prompt: str, outputs: list[str | None], scores: dict[str, list] | None,
            status: int = 2) -> dict:
    """One ``entry_type: attempt`` line; ``scores`` None writes the status-1 (not yet detected) form."""
    user = {"role": "user", "content": message(prompt)}
    return {
        "entry_type": "attempt", "uuid": f"00000000-0000-4000-8000-{seq:012d}", "seq": seq, "status": status,
        "probe_classname": probe, "probe_params": {}, "targets": [],
        "prompt": {"turns": [user], "notes": None},
        "outputs": [message(o) for o in outputs],
        "detector_results": scores or {}, "notes": {}, "goal": "test goal",
        "conversations": [{"turns": [user, {"role": "assistant", "content": message(o)}], "notes": None}
                          for o in outputs],
        "reverse_translation_outputs": [], "intent": None,
    }


def write_report(path: Path, target: str, attempts: list[dict], evals: list[dict] = ()) -> Path:
    """A whole report: setup, init, each attempt twice (status 1 then 2, as garak logs), evals, completion."""
    head = [{"entry_type": "start_run setup", "plugins.target_type": "openai.OpenAICompatible",
             "plugins.target_name": target, "run.generations": 2},
            {"entry_type": "init", "garak_version": "0.17.1", "start_time": "2026-01-01T00:00:00", "run": "r"}]
    started = [{**a, "status": 1, "detector_results": {}} for a in attempts]
    tail = [*evals, {"entry_type": "completion", "end_time": "2026-01-01T00:01:00", "run": "r"}]
    path.write_text("".join(json.dumps(e) + "\n" for e in [*head, *started, *attempts, *tail]), encoding="utf-8")
    return path
