"""Baselines: compare an audit run with a stored one and gate on drift (``compsec audit --baseline OLD``).

A run is a folder holding ``events.jsonl`` (the config header and every record) and ``summary.json``; a
baseline may be named by either file or by the folder. Two runs are *comparable* when their configurations
agree on everything that defines the measurement: the hashed config (:meth:`AuditConfig.hashed`) less
``model`` (what drifts: a new version of the model may sit at another path) and ``thresholds`` (they decide
what is flagged, not what is measured; the current run's thresholds apply). That part's hash is the
*protocol hash*; runs with different protocol hashes are refused with the differing fields named.

*Drift*: for each variant present in both runs and each gated metric, the probes both runs answered are
paired and the current run is flagged when worse past the metric's threshold with exact McNemar
``p < p_value`` (:mod:`compsec.audit.compare`). A gate (variant x metric against the original) failing now
that passed in the baseline is a *new finding*; findings already in the baseline are *known* and do not fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from compsec.audit.compare import (
    MetricDiff,
    by_variant,
    compare_records,
    mean_kl,
    thresholds_of,
    variant_gates,
)
from compsec.audit.completeness import incomplete_variants, require_complete
from compsec.audit.eventlog import LOG_NAME, config_hash, read_log
from compsec.audit.record import Record
from compsec.errors import InputError
from compsec.jsonfiles import read_json_file

NOT_COMPARED = ("model", "thresholds")


@dataclass
class AuditRun:
    """A finished (or partial) audit read back from its folder."""

    folder: Path
    header: dict
    records: list[Record]

    @property
    def config(self) -> dict:
        return self.header.get("config", {})

    @property
    def config_hash(self) -> str:
        return self.header.get("config_hash", "")

    @property
    def incomplete(self) -> dict[str, dict]:
        """The variants missing records (:func:`~compsec.audit.completeness.incomplete_variants`); empty: complete."""
        return incomplete_variants(self.header, self.records)


def load_run(path: str | Path) -> AuditRun:
    """The run of a folder, of its ``events.jsonl``, or of its ``summary.json`` (the log beside it is read).

    A summary.json that was not rendered from the log beside it (another config hash) is refused.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no audit run at {path}; give an audit --out folder or its summary.json")
    folder = path if path.is_dir() else path.parent
    if not (folder / LOG_NAME).is_file():
        raise InputError(f"{folder} has no {LOG_NAME}; a baseline needs the event log beside summary.json "
                         "(per-probe outcomes), so keep the whole audit folder")
    header, records = read_log(folder)
    if path.is_file() and path.name != LOG_NAME:
        stored = _json(path).get("config_hash")
        if stored != header.get("config_hash"):
            raise InputError(f"{path} (config hash {stored}) was not rendered from {folder / LOG_NAME} "
                             f"({header.get('config_hash')}); run `compsec report {folder}` to re-render it")
    return AuditRun(folder, header, records)


def protocol_hash(config: dict) -> str:
    """Config hash of what defines the measurement (``config`` less :data:`NOT_COMPARED` fields)."""
    return config_hash({k: v for k, v in config.items() if k not in NOT_COMPARED})


def require_comparable(baseline: AuditRun, current: AuditRun | dict, current_name: str = "") -> None:
    """Raise InputError (one line, naming the differing fields) unless the protocol hashes agree.

    ``current`` may be a run or, before running, the new config (``AuditConfig.hashed()``).
    """
    old = baseline.config
    new = current.config if isinstance(current, AuditRun) else json.loads(json.dumps(current, default=str))
    if protocol_hash(old) == protocol_hash(new):
        return
    changed = sorted(k for k in set(old) | set(new) if k not in NOT_COMPARED and old.get(k) != new.get(k))
    details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
    name = current.folder if isinstance(current, AuditRun) else current_name or "this run"
    raise InputError(f"{name} is not comparable with baseline {baseline.folder}: {details}; "
                     "rerun with the baseline's options or store a new baseline")


@dataclass
class Drift:
    """The current run against a baseline: per-variant metric diffs (A = baseline, B = current)."""

    baseline: AuditRun
    current: AuditRun
    diffs: dict[str, list[MetricDiff]]
    gates: dict[str, dict[str, MetricDiff]] = field(default_factory=dict)
    known: set[tuple[str, str]] = field(default_factory=set)
    unmatched: list[str] = field(default_factory=list)
    kl: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    @property
    def findings(self) -> dict[str, list[str]]:
        """``{variant: [lines]}`` of significant drift for the worse (empty when none)."""
        return _lines(self.diffs, "flagged")

    @property
    def improvements(self) -> dict[str, list[str]]:
        return _lines(self.diffs, "improved")

    @property
    def new_findings(self) -> dict[str, list[str]]:
        """Gates of the current run (variant against original) failing now but not in the baseline."""
        return self._gate_lines(known=False)

    @property
    def known_findings(self) -> dict[str, list[str]]:
        """Gates failing in both runs (they do not fail the drift check)."""
        return self._gate_lines(known=True)

    def _gate_lines(self, known: bool) -> dict[str, list[str]]:
        lines: dict[str, list[str]] = {}
        for name, gates in self.gates.items():
            for metric, diff in gates.items():
                if diff.flagged and ((name, metric) in self.known) == known:
                    lines.setdefault(name, []).append(diff.describe("original"))
        return lines

    @property
    def failed(self) -> bool:
        """True when the gate fails: significant drift or a new finding."""
        return bool(self.findings or self.new_findings)

    @property
    def incomplete(self) -> dict[str, dict]:
        """``{"baseline" | "current": {variant: missing entry}}`` for runs missing records; empty when both are whole.

        The gate is not evaluated on an incomplete run (neither passed nor failed): see :meth:`require_complete`.
        """
        runs = {"baseline": self.baseline.incomplete, "current": self.current.incomplete}
        return {side: entry for side, entry in runs.items() if entry}

    def require_complete(self) -> None:
        """IncompleteRunError (CLI exit 2) naming the first incomplete run, its variants and how to finish it."""
        for side, run in (("baseline", self.baseline), ("current", self.current)):
            require_complete(run.folder, self.incomplete.get(side, {}), f"{side} run")

    def to_json(self) -> dict:
        return {
            "baseline": {"folder": str(self.baseline.folder), "config_hash": self.baseline.config_hash},
            "current": {"folder": str(self.current.folder), "config_hash": self.current.config_hash},
            "protocol_hash": protocol_hash(self.current.config),
            "variants": {name: [d.to_json() for d in diffs] for name, diffs in self.diffs.items()},
            "drift": self.findings, "improvements": self.improvements, "new_findings": self.new_findings,
            "known_findings": self.known_findings, "unmatched_variants": self.unmatched, "failed": self.failed,
            "kl_to_original": {name: list(pair) for name, pair in self.kl.items()},
            "incomplete": self.incomplete,
            "gate": "not evaluated" if self.incomplete else "failed" if self.failed else "passed",
        }


def compare_runs(baseline: AuditRun, current: AuditRun) -> Drift:
    """Drift of ``current`` from ``baseline`` (refused with InputError when they are not comparable)."""
    require_comparable(baseline, current)
    thresholds = thresholds_of(current.config)
    old, new = by_variant(baseline.records), by_variant(current.records)
    diffs = {name: compare_records(old[name], rows, thresholds) for name, rows in new.items() if name in old}
    old_gates, new_gates = variant_gates(baseline.records, thresholds), variant_gates(current.records, thresholds)
    known = {(name, metric) for name, gates in old_gates.items() for metric, diff in gates.items() if diff.flagged}
    kl = {name: (mean_kl(old[name]), mean_kl(rows)) for name, rows in new.items() if name in old}
    return Drift(baseline, current, diffs, new_gates, known, unmatched=sorted(set(old) ^ set(new)), kl=kl)


def check_drift(baseline: str | Path, current: str | Path) -> Drift:
    """:func:`compare_runs` of two runs given by folder, events.jsonl or summary.json."""
    return compare_runs(load_run(baseline), load_run(current))


def _lines(diffs: dict[str, list[MetricDiff]], flag: str) -> dict[str, list[str]]:
    found = {name: [d.describe("baseline") for d in rows if getattr(d, flag)] for name, rows in diffs.items()}
    return {name: lines for name, lines in found.items() if lines}


def _json(path: Path) -> dict:
    data = read_json_file(path, "audit summary JSON (or give the audit folder instead)")
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON audit summary (expected an object)")
    return data
