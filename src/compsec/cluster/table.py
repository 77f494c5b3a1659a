"""``results.parquet``: the append-only results table of ``scan-many`` runs, one row per (model, file digest).

A Parquet *dataset*: ``OUT/results.parquet/`` holds one ``part-*.parquet`` file per flush (written under a hidden
name, then renamed, so a reader never sees half a part).  Appending never rewrites older parts; any Parquet
reader takes the folder as one table: ``pandas.read_parquet("OUT/results.parquet")``,
``pyarrow.dataset.dataset("OUT/results.parquet")``, DuckDB's ``read_parquet('OUT/results.parquet/*.parquet')``.
A rerun skips digests already in the table (resume); with ``--retry-errors`` error rows are scanned again and the
newest row of a (source, digest) wins.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from compsec.errors import InputError

TABLE_NAME = "results.parquet"
COLUMNS = (("source", "string"), ("digest", "string"), ("verdict", "string"), ("score", "float64"),
           ("error", "string"), ("seconds", "float64"), ("bytes_read", "int64"), ("file_bytes", "int64"),
           ("params", "int64"), ("sample_seed", "int64"), ("findings", "int64"), ("top_findings", "string"),
           ("scanned_at", "string"), ("worker", "string"))


def schema():
    """The table's pyarrow schema (the column order of :data:`COLUMNS`)."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in COLUMNS])


class ResultsTable:
    """The table under ``out``: :meth:`rows` to read it, :meth:`add` / :meth:`flush` to append."""

    def __init__(self, out: str | Path, flush_rows: int = 25):
        self.folder = Path(out) / TABLE_NAME
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.folder}: is a file; scan-many keeps its table as a Parquet folder there, "
                             "move the file away or choose another --out")
        self.flush_rows, self.pending = flush_rows, []

    def rows(self) -> list[dict]:
        """Every row written so far, oldest part first."""
        import pyarrow.parquet as pq

        parts = sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []
        if not parts:
            return []
        return pq.read_table([str(part) for part in parts], schema=schema()).to_pylist()

    def add(self, row: dict) -> None:
        """Queue ``row`` (extra keys dropped), writing a part every ``flush_rows`` rows."""
        row = {name: row.get(name) for name, _ in COLUMNS}
        row["scanned_at"] = row["scanned_at"] or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.pending.append(row)
        if len(self.pending) >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write the queued rows as one new part (nothing when none are queued)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns():020d}-{os.getpid()}.parquet"
        hidden = self.folder / f".{name}.tmp"
        pq.write_table(pa.Table.from_pylist(self.pending, schema=schema()), hidden)
        os.replace(hidden, self.folder / name)
        self.pending = []


def latest_rows(rows: list[dict]) -> list[dict]:
    """The newest row of every (source, digest), in first-seen order."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        latest.pop((row["source"], row["digest"]), None)
        latest[(row["source"], row["digest"])] = row
    return list(latest.values())
