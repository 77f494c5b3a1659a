"""Run :func:`compsec.cluster.task.scan_one` over many sources on Ray, ``workers`` at a time, each with a deadline.

At most ``workers`` tasks are in flight (a million-line list is not submitted at once).  A task stops itself at
``timeout_s`` after it starts (:func:`compsec.cluster.limits.deadline`); one still running ``HARD_GRACE_S`` later
(stuck in a C call, or its worker never started) is cancelled with ``force=True`` (Ray kills its worker process)
and becomes an error row; a worker that dies (segfault, the node's OOM killer) also gives an error row.  Ray never
retries a task (``max_retries=0``): only transient read errors are retried, inside the task
(:func:`compsec.cluster.ranged.with_retries`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from compsec.cluster.config import ScanManyConfig
from compsec.cluster.session import ray_session
from compsec.cluster.table import ResultsTable, latest_rows
from compsec.cluster.task import scan_one
from compsec.errors import CompsecError

POLL_S = 0.5
HARD_GRACE_S = 60.0  # worker start-up (importing torch) plus the time a C call may overrun the soft deadline


@dataclass
class RunResult:
    """What one run did: rows written, sources skipped (digest already in the table) with their old rows."""

    written: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan_many(sources: list[str], table: ResultsTable, run: ScanManyConfig,
              on_row: Callable[[dict], None] | None = None) -> RunResult:
    """Scan ``sources`` on Ray into ``table``; ``on_row(row)`` after each model (progress)."""
    import ray

    known = frozenset(row["digest"] for row in latest_rows(table.rows())
                      if row["digest"] and not (run.retry_errors and row["verdict"] == "error"))
    result, todo = RunResult(), list(reversed(sources))
    with ray_session(run.ray, run.workers):
        task = ray.remote(num_cpus=1, max_retries=0)(scan_one)
        known_ref = ray.put(known)
        pending: dict = {}
        while todo or pending:
            while todo and len(pending) < run.workers:
                source = todo.pop()
                pending[task.remote(source, run, known_ref)] = (source, time.monotonic())
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in done:
                source, started = pending.pop(ref)
                _record(_answer(ray, ref, source, started), table, result, on_row)
            for ref, (source, started) in list(pending.items()):
                if time.monotonic() - started > run.timeout_s + HARD_GRACE_S:
                    ray.cancel(ref, force=True)
                    del pending[ref]
                    _record(_error_row(source, started, f"timed out: still running {run.timeout_s + HARD_GRACE_S:g} s "
                                                        "after submission; its worker was killed"), table, result, on_row)
    table.flush()
    return result


def _answer(ray, ref, source: str, started: float) -> dict:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # the worker died: segfault, OOM kill, node lost
        message = " ".join(str(err).split())[:300]
        return _error_row(source, started, f"worker died while scanning ({type(err).__name__}: {message})")


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
