"""``run_audit``: send every probe to the original and to each variant, judge, and log one record each.

Order: the original first, then the variants as given. Within a variant (:func:`compsec.audit.step.variant_batches`),
probes go in batches of ``batch_size``; each batch's records are appended (and flushed) to ``events.jsonl`` as
soon as they are produced, so a run killed at any point resumes from the log. With ``config.ray`` every variant
runs in its own Ray actor instead (:mod:`compsec.audit.on_ray`) and this process appends what the actors return
to the same log. At the end ``summary.json`` and ``report.html`` are rendered from the log alone.

Before the log is opened or any model runs, every variant with work left that can check itself (endpoints:
one tiny request) does, so a dead endpoint fails in seconds. What goes wrong on the way to a response (an
endpoint's retries, failures, cut answers, a circuit breaker that stops the variant) is logged as records of
kind ``fault``; a prompt that got no answer gets no record of its own, so the run is *incomplete*
(:mod:`compsec.audit.completeness`) and the next run into the same folder sends only what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.eventlog import LOG_NAME, EventLog, read_log
from compsec.audit.probes import KINDS, Probe, load_probe_set, load_probe_sets
from compsec.audit.record import FAULT, Record
from compsec.audit.step import variant_batches
from compsec.audit.summary import build_summary
from compsec.audit.variants import ORIGINAL, require_loadable_folders, resolve_variant
from compsec.errors import InputError


@dataclass
class AuditResult:
    """Where the run wrote, its summary dict, and ``findings`` (``{variant: [lines]}``, empty when clean)."""

    out: Path
    summary: dict

    @property
    def findings(self) -> dict[str, list[str]]:
        return self.summary.get("findings", {})


def run_audit(config: AuditConfig, *, model=None, tokenizer=None,
              on_record: Callable[[Record], None] | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> AuditResult:
    """Run (or resume) the audit described by ``config``; see the module docstring.

    ``model``/``tokenizer`` may be passed preloaded (else ``config.model`` is loaded once). ``on_record`` is
    called after each record is logged; ``progress(variant, done, total)`` after each batch.
    """
    probes = load_probe_sets(list(config.probes), config.limit)
    if config.contrast:
        probes += load_probe_set("contrast")[: config.limit]
    if not probes:
        raise InputError(f"nothing to audit: no probe set given; use --probes with shipped sets ({', '.join(KINDS)}) "
                         "or your own files")
    variants = [resolve_variant(spec) for spec in (ORIGINAL, *config.variants)]
    preflight(config, variants, probes)  # endpoints first: a dead server fails in seconds, before any model loads
    if config.ray:
        from compsec.audit.on_ray import run_on_ray

        run_on_ray(config, variants, probes, on_record, progress)
        return render(config.out)
    context = AuditContext(config, model, tokenizer)
    _ = context.model  # load (and so validate) the original and the folder variants before anything is written
    require_loadable_folders(variants)
    log = open_log(config, variants, probes)
    for variant in variants:
        todo = pending(log.finished(), variant.name, probes)
        for records, done in variant_batches(context, variant, todo, fault_count(log)):
            append_batch(log, records, on_record)
            if progress:
                progress(variant.name, done, len(todo))
    return render(config.out)


def open_log(config: AuditConfig, variants: list, probes: list[Probe]) -> EventLog:
    """Create or resume ``config.out/events.jsonl``, its header holding the plan (variant names, probe keys)."""
    plan = {"variants": [v.name for v in variants], "probes": [f"{p.kind}/{p.id}" for p in probes]}
    return EventLog.open(config.out, config.hashed(), plan=plan)


def append_batch(log: EventLog, records: list[Record], on_record: Callable[[Record], None] | None) -> None:
    """Append (and flush) each record of a batch to the log, calling ``on_record`` after each."""
    for record in records:
        log.append(record)
        if on_record:
            on_record(record)


def fault_count(log: EventLog) -> int:
    """Fault records in the log: new faults are numbered after them."""
    return sum(1 for r in log.records() if r.kind == FAULT)


def preflight(config: AuditConfig, variants: list, probes: list[Probe]) -> None:
    """Let every variant with work left and a ``preflight(config)`` (endpoints) check itself, before any model runs.

    Raises the variant's CompsecError (exit 2 in the CLI) before the log is opened, so nothing is written.
    """
    log_path = Path(config.out) / LOG_NAME
    finished = {r.key for r in read_log(log_path)[1]} if _has_lines(log_path) else set()
    for variant in variants:
        check = getattr(variant, "preflight", None)
        if check is not None and pending(finished, variant.name, probes):
            check(config)


def _has_lines(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def pending(finished: set, variant: str, probes: list[Probe]) -> list[Probe]:
    """The probes of ``probes`` without a record of ``variant`` in ``finished``."""
    return [p for p in probes if (variant, p.kind, p.id) not in finished]


def render(out: str | Path) -> AuditResult:
    """Write ``summary.json`` and ``report.html`` from ``out/events.jsonl`` alone; returns the result."""
    from compsec.audit.report_html import write_report

    out = Path(out)
    header, records = read_log(out)
    summary = build_summary(header, records)
    if (out / "lm_eval.json").is_file():  # the lm-eval bridge's scores survive a re-render
        scores = json.loads((out / "lm_eval.json").read_text(encoding="utf-8"))
        summary["lm_eval"] = {key: value for key, value in scores.items() if key != "seconds"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_report(out / "report.html", summary, records)
    return AuditResult(out, summary)
