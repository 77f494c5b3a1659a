"""The search's event log ``DIR/events.jsonl`` and the state rebuilt from it.

The first line is ``{"event": "config", "config_hash": ..., "config": {...}}``; every following line is one
finished *round* (``{"event": "round", "round": r, "cost": evaluations, "scored": [...], "verified": [...]}``,
round 0 also carries ``"seeds"``), written and flushed when the round ends. Reopening the folder replays the
rounds without running any model, cuts a half-written last line, and refuses another configuration with
:class:`~compsec.errors.ConfigMismatchError`. Rounds draw their randomness from ``(seed, round)``, so a
killed and resumed search produces the same rounds as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from compsec.audit.eventlog import config_hash
from compsec.errors import ConfigMismatchError, InputError

LOG_NAME = "events.jsonl"
MAX_EXPANSIONS = 3


@dataclass
class SearchState:
    """What the finished rounds established: evaluations spent, candidates (by prompt), verifications."""

    spent: int = 0
    rounds: int = 0
    seeds: list[dict] = field(default_factory=list)
    candidates: dict[str, dict] = field(default_factory=dict)
    verified: dict[str, dict] = field(default_factory=dict)
    expansions: dict[str, int] = field(default_factory=dict)

    def apply(self, event: dict) -> None:
        """Fold one round event into the state."""
        self.spent += event["cost"]
        self.rounds = event["round"] + 1
        self.seeds += event.get("seeds", [])
        for parent in event.get("parents", []):
            self.expansions[parent] = self.expansions.get(parent, 0) + 1
        self.candidates.update((c["prompt"], c) for c in event["scored"])
        self.verified.update((v["prompt"], v) for v in event["verified"])

    def ranked(self) -> list[dict]:
        """Candidates by objective, highest first (ties by prompt, so the order is reproducible)."""
        return sorted(self.candidates.values(), key=lambda c: (-c["objective"], c["prompt"]))

    def parents(self, beam: int) -> list[dict]:
        """The ``beam`` best candidates not yet expanded ``MAX_EXPANSIONS`` times."""
        fresh = [c for c in self.ranked() if self.expansions.get(c["prompt"], 0) < MAX_EXPANSIONS]
        return fresh[:beam]

    def divergent(self) -> list[dict]:
        """Verified divergent prompts, by objective (highest first)."""
        return sorted((v for v in self.verified.values() if v["divergent"]),
                      key=lambda v: (-v["objective"], v["prompt"]))


class SearchLog:
    """An open ``events.jsonl``; :meth:`open` creates it or resumes it for the same configuration."""

    def __init__(self, path: Path, header: dict, events: list[dict]):
        self.path, self.header, self.events = path, header, events

    @classmethod
    def open(cls, directory: str | Path, config: dict) -> SearchLog:
        path = Path(directory) / LOG_NAME
        config = json.loads(json.dumps(config, default=str))
        header = {"event": "config", "config_hash": config_hash(config), "config": config}
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(header, sort_keys=True) + "\n", encoding="utf-8")
            return cls(path, header, [])
        old, events = read_search_log(path, repair=True)
        if old["config_hash"] != header["config_hash"]:
            changed = sorted(k for k in set(old["config"]) | set(config) if old["config"].get(k) != config.get(k))
            raise ConfigMismatchError(f"{path} was written by a search with other options ({', '.join(changed)}); "
                                      "use a new --out folder, or rerun with the original options to resume")
        return cls(path, old, events)

    def state(self) -> SearchState:
        state = SearchState()
        for event in self.events:
            state.apply(event)
        return state

    def append(self, event: dict) -> None:
        """Write one round event as a line and flush it."""
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event, sort_keys=True, ensure_ascii=False) + "\n")
            out.flush()
        self.events.append(event)


def read_search_log(path: str | Path, repair: bool = False) -> tuple[dict, list[dict]]:
    """(header, round events) of a search log (folder or file); ``repair`` cuts a half-written last line."""
    path = Path(path)
    path = path / LOG_NAME if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"no search log at {path}; run `compsec search MODEL --out DIR` first")
    from compsec.audit.eventlog import complete_lines

    lines = complete_lines(path, repair)
    from compsec.jsonfiles import parse_json_objects

    rows = parse_json_objects("\n".join(lines), str(path))
    header = rows[0] if rows else {}
    if header.get("event") != "config" or "round" in header:
        raise InputError(f"{path} does not start with a config line; it is not a compsec search log")
    events = rows[1:]
    if [e.get("round") for e in events] != list(range(len(events))):
        raise InputError(f"{path} has rounds out of order; it was edited or mixed with another log")
    return header, events
