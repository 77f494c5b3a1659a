"""``scan_one``: one model of a ``scan-many`` run, from its source to its results row.

The same function runs in process or as a Ray task.  Whatever the file does (hostile header, pickle, symlink,
out of memory), the answer is a row: ``verdict`` ``clean`` / ``suspicious`` / ``error`` (with ``error`` saying
why; the scan's "not scanned" is an error row, since nothing was vetted).  A source whose digest is in ``known``
is not scanned again: the row comes back with ``skipped`` set.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path

from compsec.cluster.config import ScanManyConfig
from compsec.cluster.limits import ScanTimeout, deadline, memory_limit
from compsec.cluster.sources import is_remote
from compsec.cluster.warmup import warm_kernels
from compsec.errors import CompsecError

TOP_FINDINGS = 5


def scan_one(source: str, run: ScanManyConfig, known: frozenset[str] = frozenset()) -> dict:
    """The results row of ``source`` (see :data:`compsec.cluster.table.SCHEMA`), never an exception."""
    started = time.perf_counter()
    warm_imports()
    _warm(run)
    row = {"source": source, "digest": "", "verdict": "error", "score": 0.0, "error": "", "bytes_read": 0,
           "file_bytes": 0, "params": 0, "sample_seed": None, "findings": 0, "top_findings": "[]", "skipped": False,
           "worker": f"{socket.gethostname()}:{os.getpid()}"}
    armed = time.perf_counter()
    try:
        with deadline(run.timeout_s), tempfile.TemporaryDirectory(prefix="compsec-scan-many-") as work:
            _scan_into(row, source, run, known, Path(work))
    except ScanTimeout as err:
        row["error"] = str(err)
    except MemoryError:
        row["error"] = f"scan needed more than --memory-mb {run.memory_mb} MiB; raise it or use --sample"
    except FileNotFoundError as err:
        cause = f" ({_one_line(err.__cause__)})" if err.__cause__ is not None else ""
        row["error"] = f"{source}: not found{cause}; check the path or URL"
    except (CompsecError, OSError, ValueError, RuntimeError) as err:
        row["error"] = _one_line(err)
        if "allocate" in row["error"] and isinstance(err, RuntimeError):
            row["error"] = f"scan needed more than --memory-mb {run.memory_mb} MiB ({row['error'][:120]})"
        row["error"] = _timeout_in(err) or row["error"]
    except Exception as err:  # noqa: BLE001  (a hostile file must yield an error row, never a dead run)
        row["error"] = _timeout_in(err) or f"internal error: {_one_line(err)}"
    if row["error"] and time.perf_counter() - armed >= run.timeout_s:  # the alarm fired, whatever it surfaced as
        row["error"] = f"timed out after {run.timeout_s:g} s (--timeout)"
    row["seconds"] = time.perf_counter() - started
    return row


def scan_batch(sources: list[str], run: ScanManyConfig, known: frozenset[str] = frozenset()) -> list[dict]:
    """The rows of ``sources``, scanned one after the other in this process (one Ray task of a ``--batch`` run)."""
    return [scan_one(source, run, known) for source in sources]


def _timeout_in(err: BaseException) -> str | None:
    """The deadline's message when ``err`` was caused by it: SIGALRM that lands inside compiled code (the numba
    tally kernel, torch) comes back wrapped, e.g. as "SystemError: ... returned a result with an exception set"."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ScanTimeout):
            return str(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def warm_imports() -> None:
    """Import what a scan imports lazily, outside the deadline: SIGALRM inside ``import torch`` would leave a
    half-initialised module behind for every later task of the worker."""
    import fsspec  # noqa: F401
    import safetensors.torch  # noqa: F401

    from compsec import formats  # noqa: F401
    from compsec.integrity import collect  # noqa: F401
    from compsec.models import linear  # noqa: F401
    from compsec.scan import runner, tensor_stream  # noqa: F401


def _warm(run: ScanManyConfig) -> None:
    """Compile the kernels outside the deadline and the memory ceiling (see :mod:`compsec.cluster.warmup`); a probe
    that fails here is left for the real scan to report."""
    from compsec.scan.config import ScanConfig

    with contextlib.suppress(Exception):  # e.g. an unknown format: the scan itself gives the error row
        warm_kernels(ScanConfig(formats=run.formats, sample_weights=run.sample, seed=0 if run.sample else None))


def _scan_into(row: dict, source: str, run: ScanManyConfig, known: frozenset[str], work: Path) -> None:
    from compsec.scan.config import ScanConfig
    from compsec.scan.coverage import fresh_seed
    from compsec.scan.runner import scan_path

    seed = None if run.sample == 0 else (run.seed if run.seed is not None else fresh_seed())
    cfg = ScanConfig(formats=run.formats, sample_weights=run.sample, seed=seed)
    if is_remote(source):
        from compsec.cluster.ranged import fetch
        from compsec.cluster.row_plan import needed_ranges

        fetched = fetch(source, work, run.sample, lambda header: needed_ranges(header, cfg, seed), run.read_retries)
        path, row["digest"], row["bytes_read"], row["file_bytes"] = (fetched.path, fetched.digest,
                                                                      fetched.bytes_read, fetched.file_bytes)
    else:
        path = local_source(source)
        row["digest"], row["file_bytes"] = local_digest(path)
        row["bytes_read"] = row["file_bytes"]  # the scan reads every byte of a local file (NaN/Inf pass)
    if row["digest"] in known:
        row.update(skipped=True, verdict="")
        return
    with memory_limit(run.memory_mb):
        report = scan_path(path, cfg)
    _fill(row, report)


def _fill(row: dict, report) -> None:
    row["sample_seed"], row["params"] = report.sample_seed, report.params_scanned
    if report.verdict == "not scanned":
        reasons = "; ".join(f"{s['tensor']}: {s['reason']}" for s in report.skipped[:3])
        row["error"] = f"not scanned: no weight could be tested ({reasons or 'no tensor'})"
        return
    suspicious = sorted(report.suspicious, key=lambda f: -f.score)
    row.update(verdict=report.verdict, score=float(report.score), findings=len(suspicious))
    row["top_findings"] = json.dumps([{"tensor": f.tensor, "format": f.format, "detector": f.detector,
                                       "score": f.score, "explanation": f.explanation}
                                      for f in suspicious[:TOP_FINDINGS]])


def local_source(source: str) -> Path:
    """``source`` as a path, refusing symlinks (a corpus entry may not lead outside the corpus)."""
    from compsec.integrity.path_policy import checked_input

    path = Path(source)
    if path.is_symlink():
        raise CompsecError(f"{source}: is a symlink; scan-many scans regular files and folders only (a link may "
                           "lead outside the corpus): scan its target instead")
    return checked_input(path, "model file or folder")


def local_digest(path: Path) -> tuple[str, int]:
    """``("sha256:...", bytes)`` of a file, or of a folder's files (sorted relative names and contents)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest, total = hashlib.sha256(), 0
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            while block := handle.read(8 << 20):
                digest.update(block)
                total += len(block)
    return "sha256:" + digest.hexdigest(), total


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:500] or type(err).__name__
