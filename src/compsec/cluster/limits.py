"""A memory ceiling and a deadline for one model's scan inside a long-lived worker process.

The deadline (:func:`deadline`) counts from when the task starts (not from its submission: a worker restarted
after a kill spends seconds importing torch) and raises :class:`ScanTimeout` through SIGALRM, which Python
delivers between bytecodes, so a scan stuck inside one long C call is stopped only by the driver's hard kill.

Linux's ``RLIMIT_DATA`` counts private writable mappings (the heap, torch's buffers) but not the mmap'd checkpoint,
so the ceiling is "what the worker uses now + ``memory_mb``": a scan that needs more fails with MemoryError (or
torch's "can't allocate memory") instead of taking the node down.  The previous limit is restored afterwards.
Where ``resource`` is missing (Windows) the ceiling is left to Ray's own memory monitor.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def data_bytes_in_use() -> int | None:
    """``VmData`` of this process in bytes (None where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _start_thread_pools() -> None:
    """Make torch start its OpenMP / intra-op threads now: libgomp aborts the whole process when it cannot map a
    thread's stack, so threads first created under the ceiling would kill the worker instead of failing the scan."""
    import torch

    torch.ones(1 << 16).mul_(2).sum()


@contextmanager
def memory_limit(memory_mb: int) -> Iterator[None]:
    """Within the block, this process may allocate at most ``memory_mb`` MiB more than it holds now."""
    try:
        import resource
    except ImportError:  # not POSIX: nothing to set
        yield
        return
    _start_thread_pools()
    in_use = data_bytes_in_use()
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if in_use is None:
        yield
        return
    ceiling = in_use + memory_mb * (1 << 20)
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (ceiling, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


class ScanTimeout(Exception):
    """A scan ran past its deadline."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within the block, raise :class:`ScanTimeout` after ``seconds`` (main thread of a POSIX process only; else
    nothing is set and the caller's hard deadline applies)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise ScanTimeout(f"timed out after {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
