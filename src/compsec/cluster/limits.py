"""A memory ceiling for one model's scan inside a long-lived worker process.

Linux's ``RLIMIT_DATA`` counts private writable mappings (the heap, torch's buffers) but not the mmap'd checkpoint,
so the ceiling is "what the worker uses now + ``memory_mb``": a scan that needs more fails with MemoryError (or
torch's "can't allocate memory") instead of taking the node down.  The previous limit is restored afterwards.
Where ``resource`` is missing (Windows) the ceiling is left to Ray's own memory monitor.
"""

from __future__ import annotations

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


@contextmanager
def memory_limit(memory_mb: int) -> Iterator[None]:
    """Within the block, this process may allocate at most ``memory_mb`` MiB more than it holds now."""
    try:
        import resource
    except ImportError:  # not POSIX: nothing to set
        yield
        return
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
