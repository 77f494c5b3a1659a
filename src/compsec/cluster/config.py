"""Settings of a ``compsec scan-many`` run (the CLI's options come from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ScanManyConfig:
    """How to scan many models.

    workers: models scanned at the same time (one Ray task, one CPU each).
    batch: models per Ray task, scanned one after the other (each with its own deadline and memory ceiling).  More
        than 1 saves the driver's and Ray's per-task work on small models; a batch whose worker dies or overruns is
        run again one model per task, so the error row still names the model that caused it.  0 (default): sized
        from the measured seconds per model (:mod:`compsec.cluster.batching`).
    ray: "" starts a local Ray instance with ``workers`` CPUs for the run; "auto" joins the running cluster
        (``ray start --head`` or a cluster launcher); "HOST:PORT" or "ray://..." joins that one.
    sample: 0 (default) examines every weight, so the whole file is read; N > 0 is the scan's quick look at about N
        weights per tensor, and a remote file is then read by ranges (header, then only the sampled rows).
    seed: seed of a sampled run (None: a fresh random one per model, recorded in the table).
    timeout_s: wall-clock seconds one model may take (read and scan) before its task is killed (an error row).
    memory_mb: memory (MiB) one model's scan may allocate on top of the worker's own (Linux: RLIMIT_DATA; the
        mmap'd file does not count); a scan that needs more yields an error row.
    formats: formats whose boxes are checked (default: the scan's defaults).
    read_retries: retries of a transient read error (network, 5xx, 429) of a remote file, with backoff;
        nothing else is retried.
    retry_errors: scan again the sources whose newest row is an error (default: a digest in the table is skipped).
    flush_rows: rows held before a part is written to ``results.parquet`` (an interrupted run loses at most these).
    """

    workers: int = 1
    batch: int = 0
    ray: str = ""
    sample: int = 0
    seed: int | None = None
    timeout_s: float = 600.0
    memory_mb: int = 4096
    formats: tuple[str, ...] = field(default=())
    read_retries: int = 3
    retry_errors: bool = False
    flush_rows: int = 25

    def __post_init__(self) -> None:
        if self.workers < 1 or self.batch < 0:
            raise ValueError(f"workers={self.workers} must be >= 1 and batch={self.batch} >= 0 (0: automatic)")
        if self.sample < 0:
            raise ValueError("sample must be >= 0 (0 examines every weight)")
        if self.timeout_s <= 0 or self.memory_mb <= 0:
            raise ValueError("timeout and memory limit must be positive; try --timeout 600 --memory-mb 4096")
        if self.read_retries < 0 or self.flush_rows < 1:
            raise ValueError("read_retries must be >= 0 and flush_rows >= 1")
