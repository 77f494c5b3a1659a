"""Run :func:`compsec.cluster.task.scan_one` over many sources on Ray, ``workers`` at a time, each with a deadline.

At most ``workers`` tasks are in flight (a million-line list is not submitted at once).  A task stops itself at
``timeout_s`` after it starts (:func:`compsec.cluster.limits.deadline`); one still running ``HARD_GRACE_S`` later
(stuck in a C call, or its worker never started) is cancelled with ``force=True`` (Ray kills its worker process)
and becomes an error row; a worker that dies (segfault, the node's OOM killer) also gives an error row.  Ray never
retries a task (``max_retries=0``): only transient read errors are retried, inside the task
(:func:`compsec.cluster.ranged.with_retries`).  A task may scan several models in turn (``batch``: a fixed count,
or by default a count sized from the measured seconds per model, :mod:`compsec.cluster.batching`); a batch whose
worker dies or overruns its models' deadlines is split, each model run again in a task of its own, so the error
row lands on the model that caused it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from compsec.cluster.batching import AUTO, BatchSizer
from compsec.cluster.config import ScanManyConfig
from compsec.cluster.session import ray_session
from compsec.cluster.table import ResultsTable, latest_rows
from compsec.cluster.task import scan_batch
from compsec.errors import CompsecError

POLL_S = 0.5
HARD_GRACE_S = 60.0  # worker start-up (importing torch) plus the time a C call may overrun the soft deadline


@dataclass
class RunResult:
    """What one run did: rows written, sources skipped (digest already in the table) with their old rows."""

    written: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan_many(sources: list[str], table: ResultsTable, run: ScanManyConfig,
              on_row: Callable[[dict], None] | None = None, scan: Callable = scan_batch) -> RunResult:
    """Scan ``sources`` on Ray into ``table``; ``on_row(row)`` after each model (progress).  ``scan(batch, run,
    known)`` is what a task runs (:func:`compsec.cluster.task.scan_batch`)."""
    import ray

    known = frozenset(row["digest"] for row in latest_rows(table.rows())
                      if row["digest"] and not (run.retry_errors and row["verdict"] == "error"))
    result, todo, alone = RunResult(), list(reversed(sources)), []
    sizer = BatchSizer(run.batch, run.workers)
    with ray_session(run.ray, run.workers):
        task = ray.remote(num_cpus=1, max_retries=0)(scan)
        known_ref = ray.put(known)
        pending: dict = {}
        while todo or alone or pending:
            while (todo or alone) and len(pending) < run.workers:
                batch = [alone.pop()] if alone else [todo.pop() for _ in range(sizer.next_size(len(todo)))]
                pending[task.remote(batch, run, known_ref)] = (batch, time.monotonic())
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in done:
                batch, started = pending.pop(ref)
                rows = _answer(ray, ref, batch, started)
                if rows is None:  # a worker died under a batch: each of its models runs again, alone
                    alone.extend(reversed(batch))
                    continue
                sizer.observe(rows)
                for row in rows:
                    _record(row, table, result, on_row)
            for ref, (batch, started) in list(pending.items()):
                limit = _hard_limit(run, len(batch))
                if time.monotonic() - started > limit:
                    ray.cancel(ref, force=True)
                    del pending[ref]
                    if len(batch) > 1:
                        alone.extend(reversed(batch))
                        continue
                    _record(_error_row(batch[0], started, f"timed out: still running {limit:g} s after submission; "
                                                          "its worker was killed"), table, result, on_row)
    table.flush()
    return result


def _hard_limit(run: ScanManyConfig, models: int) -> float:
    """Seconds after submission a task is killed.  An automatic batch was sized to take seconds, so it gets one
    model's time (a stuck C call is found as soon as with one model per task; an overrun batch is split and rerun
    a model per task, each with its full time); a fixed ``--batch N`` gets N models' time."""
    return (1 if run.batch == AUTO else models) * run.timeout_s + HARD_GRACE_S


def _answer(ray, ref, batch: list[str], started: float) -> list[dict] | None:
    """The batch's rows; None when its worker died under a batch of several models (they are run again alone)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # the worker died: segfault, OOM kill, node lost
        if len(batch) > 1:
            return None
        message = " ".join(str(err).split())[:300]
        return [_error_row(batch[0], started, f"worker died while scanning ({type(err).__name__}: {message})")]


def _error_row(source: str, started: float, error: str) -> dict:
    return {"source": source, "digest": "", "verdict": "error", "score": 0.0, "error": error,
            "seconds": time.monotonic() - started, "bytes_read": 0, "file_bytes": 0, "params": 0,
            "findings": 0, "top_findings": "[]", "worker": ""}


def _record(row: dict, table: ResultsTable, result: RunResult, on_row) -> None:
    if row.get("skipped"):
        result.skipped.append(row["digest"])
    else:
        table.add(row)
        result.written.append(row)
    if on_row is not None:
        on_row(row)


def exit_code(rows: list[dict]) -> int:
    """0 every model clean, 1 any suspicious, 2 any error or no model at all."""
    verdicts = {row["verdict"] for row in rows}
    if not rows or "error" in verdicts:
        return 2
    return 1 if "suspicious" in verdicts else 0


def run_rows(result: RunResult, table_rows: list[dict]) -> list[dict]:
    """This run's rows: the ones written and, for skipped sources, the table's newest row of that digest."""
    by_digest = {row["digest"]: row for row in latest_rows(table_rows) if row["digest"]}
    missing = [digest for digest in result.skipped if digest not in by_digest]
    if missing:
        raise CompsecError(f"digest {missing[0]} was skipped as known but is not in the table; rerun the command")
    return result.written + [by_digest[digest] for digest in result.skipped]
