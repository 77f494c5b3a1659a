"""The audit's append-only event log ``DIR/events.jsonl``: a config header, then one line per record.

The first line is ``{"event": "config", "config_hash": ..., "config": {...}, "plan": {...}}``; every following
line is a :class:`~compsec.audit.record.Record` written and flushed as soon as it is produced. Reopening a folder
resumes it: finished (variant, kind, probe) records are kept and skipped, a half-written last line (a run
killed mid-write) is cut off, and a run with a different configuration is refused with
:class:`~compsec.errors.ConfigMismatchError`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from compsec.audit.record import Record
from compsec.errors import ConfigMismatchError, InputError
from compsec.jsonfiles import parse_json_objects

LOG_NAME = "events.jsonl"


def config_hash(config: dict) -> str:
    """Hex SHA-256 (first 16 digits) of ``config`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class EventLog:
    """An open ``events.jsonl``; use :meth:`open` (creates or resumes) rather than the constructor."""

    def __init__(self, path: Path, header: dict, records: list[Record]):
        self.path, self.header, self._records = path, header, records
        self._keys = {r.key for r in records}

    @classmethod
    def open(cls, directory: str | Path, config: dict, plan: dict | None = None) -> EventLog:
        """Create ``directory/events.jsonl`` for ``config``, or resume it when it was written for ``config``.

        ``plan`` (``{"variants": [names], "probes": ["kind/id", ...]}``: what the run will measure) is kept in
        a new log's header, so a report can tell what an interrupted run is missing.
        """
        path = Path(directory) / LOG_NAME
        config = json.loads(json.dumps(config, default=str))  # tuples become lists, as when read back
        header = {"event": "config", "config_hash": config_hash(config), "config": config}
        if plan is not None:
            header["plan"] = plan
        if not path.exists() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(header, sort_keys=True) + "\n", encoding="utf-8")
            return cls(path, header, [])
        old_header, records = read_log(path, repair=True)
        if old_header["config_hash"] != header["config_hash"]:
            raise ConfigMismatchError(_mismatch_message(path, old_header.get("config", {}), config))
        return cls(path, old_header, records)

    @property
    def config_hash(self) -> str:
        return self.header["config_hash"]

    def records(self) -> list[Record]:
        """Every record in the order written (no duplicates)."""
        return list(self._records)

    def finished(self) -> set[tuple[str, str, str]]:
        """Keys (variant, kind, probe id) of the records already in the log."""
        return set(self._keys)

    def append(self, record: Record) -> None:
        """Write ``record`` as one line and flush it; a key already in the log is an error (no duplicates)."""
        if record.key in self._keys:
            raise ValueError(f"record {record.key} is already in {self.path}; resumed runs skip finished keys")
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
            out.flush()
        self._records.append(record)
        self._keys.add(record.key)


def complete_lines(path: Path, repair: bool = False) -> list[str]:
    """The complete lines of a JSONL log; ``repair`` cuts a half-written last line (a killed run's) from the file."""
    raw = path.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    if repair and len(complete) < len(raw):
        path.write_bytes(complete)
    return complete.decode("utf-8").splitlines()


def read_log(path: str | Path, repair: bool = False) -> tuple[dict, list[Record]]:
    """The header and records of a log (a folder or the file); ``repair`` cuts a half-written last line."""
    path = Path(path)
    path = path / LOG_NAME if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"no audit log at {path}; run `compsec audit MODEL --out DIR` first")
    lines = complete_lines(path, repair)
    rows = parse_json_objects("\n".join(lines), str(path))
    if not rows or rows[0].get("event") != "config":
        raise InputError(f"{path} does not start with a config line; it is not a compsec audit log")
    records, seen = [], set()
    for number, row in enumerate(rows[1:], 2):
        try:
            record = Record.from_json(row)
        except TypeError as err:
            raise InputError(f"{path}:{number}: not an audit record ({err}); the log was edited or damaged") from None
        if record.key not in seen:
            seen.add(record.key)
            records.append(record)
    return rows[0], records


def _mismatch_message(path: Path, old: dict, new: dict) -> str:
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
    return (f"{path} was written by a run with another configuration ({details}); "
            "use a new --out folder, or rerun with the original options to resume")
