"""How many models the next Ray task scans: fixed (``--batch N``), or sized from the models seen so far (``--batch 0``).

A task costs Ray a round trip (tens of ms) during which its worker idles; on a hub's many small models that is
most of the work.  The automatic size grows a batch until its scan takes about ``TARGET_TASK_S`` seconds, from the
measured seconds per model, and shrinks it near the end so each worker still gets ``TAIL_BATCHES`` batches of the
remaining models (no worker sits on a long last batch while the others idle).  The first tasks hold one model
each: nothing is known yet, and a huge or hostile first model costs no batch a rerun.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AUTO = 0
TARGET_TASK_S = 2.0
TAIL_BATCHES = 4
MAX_BATCH = 64


@dataclass
class BatchSizer:
    """``next_size(remaining)`` for a run of ``workers`` workers; ``observe(rows)`` after each answered task."""

    batch: int
    workers: int
    models_seen: int = 0
    seconds_seen: float = 0.0

    def observe(self, rows: list[dict]) -> None:
        """Learn the per-model cost from a task's rows (skipped rows, read from the table, cost nothing)."""
        for row in rows:
            if not row.get("skipped"):
                self.models_seen += 1
                self.seconds_seen += max(0.0, float(row.get("seconds") or 0.0))

    def next_size(self, remaining: int) -> int:
        """Models for the next task: between 1 and ``remaining`` (``remaining`` >= 1)."""
        if self.batch != AUTO:
            return min(self.batch, remaining)
        if self.models_seen < self.workers:
            return 1
        per_model = self.seconds_seen / self.models_seen
        wanted = MAX_BATCH if per_model <= 0 else math.floor(TARGET_TASK_S / per_model)
        fair = remaining // (TAIL_BATCHES * self.workers)
        return max(1, min(wanted, fair, MAX_BATCH, remaining))
