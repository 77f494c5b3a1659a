"""What to run on one tensor (formats that apply, provenance, sampled layout) and how to feed it chunks.

Used by :func:`compsec.scan.runner.scan_path` for tensors streamed from a file and by :func:`scan_batch` for
tensors already in memory.
"""

from __future__ import annotations

import torch

from compsec.formats.base import Format
from compsec.scan.blocks import block_size_of
from compsec.scan.config import ScanConfig
from compsec.scan.findings import Evidence, ScanFinding
from compsec.scan.grid_provenance import grid_provenance_batch, probe_of
from compsec.scan.reader import NARROWER
from compsec.scan.tensor_scan import TensorScan, outlier_sizes, row_wise, rows_per_chunk


def usable(fmt: Format, shape: tuple[int, int], sample_block: int | None = None) -> bool:
    """Whether ``fmt`` can be checked on a tensor of ``shape``: supported, and in a sampled run (blocks of
    ``sample_block`` weights of a row) either row-wise or with blocks that tile the sampled blocks."""
    if not fmt.supports(tuple(shape)):
        return False
    if sample_block is None or row_wise(fmt, shape[-1]):
        return True
    size = block_size_of(fmt, shape[-1])
    return shape[-1] % size == 0 and sample_block % size == 0


def start_tensor(name: str, probe: torch.Tensor, shape: tuple[int, int], fmts: list[Format],
                 candidates: list[Format], cfg: ScanConfig, sample_block: int | None = None,
                 ) -> tuple[TensorScan | None, list[ScanFinding]]:
    """The tensor's scan (None when no checked format applies) and its information findings (grid provenance
    from ``probe``, the tensor's leading rows in storage dtype).  Grid-derived tensors get no edge tests: their
    positions are a few distinct values per block, not independent draws."""
    ok = [f for f in fmts if usable(f, shape, sample_block)]
    if not ok:
        return None, []
    probe = probe_of(probe)
    origin = grid_provenance_batch([probe], [[f for f in candidates if f.supports(tuple(probe.shape))]])[0]
    info = [] if origin is None else [ScanFinding(name, origin.source, "grid-provenance", origin.fraction, None,
                                                  origin.explain(), severity="info")]
    scan = TensorScan(name, cfg, ok if origin is None else [], outlier_sizes(ok, shape[-1], sample_block is not None))
    return scan, info


def sampled_chunk(rows: torch.Tensor, first: int, sampled_rows: torch.Tensor, columns: torch.Tensor, block: int,
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The sampled blocks of a chunk (``rows`` starting at row ``first``): ``(blocks, with_absmax)``, each
    ``(r, k * block)`` for the ``r`` sampled rows of the chunk; ``with_absmax`` has each row's abs-max weight
    appended (one more column) for row-wise formats."""
    inside = (sampled_rows >= first) & (sampled_rows < first + rows.shape[0])
    local, cols = sampled_rows[inside] - first, columns[inside]
    grid = rows.reshape(rows.shape[0], -1, block)
    picked = grid[local.unsqueeze(1), cols].reshape(len(local), -1)
    absmax = rows[local].float().abs().argmax(dim=1)
    return picked, torch.cat([picked, rows[local, absmax].unsqueeze(1)], dim=1)


def effective_storage(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` in the narrowest dtype that holds every value exactly (bf16, then fp16, else unchanged)."""
    for narrow in NARROWER.get(rows.dtype, ()):
        cast = rows.to(narrow)
        if torch.equal(cast.to(rows.dtype), rows):
            return cast
    return rows


def scan_batch(batch: list[tuple[str, torch.Tensor, bool]], fmts: list[Format], candidates: list[Format],
               cfg: ScanConfig) -> tuple[list[Evidence], list[ScanFinding]]:
    """Tamper evidence and information findings for in-memory tensors ``(name, 2-D weights, sampled)``, every
    weight examined; ``sampled``: the rows are a sample of a larger tensor, so formats whose flat blocks would
    straddle rows are skipped.  ``fmts``: formats whose boxes are checked; ``candidates``: provenance sources."""
    evidence, info = [], []
    for name, w, sampled in batch:
        w = effective_storage(w)
        ok = [f for f in fmts if not sampled or w.shape[-1] % block_size_of(f, w.shape[-1]) == 0]
        scan, told = start_tensor(name, w, tuple(w.shape), ok, candidates, cfg)
        info += told
        if scan is None:
            continue
        step = rows_per_chunk(scan.edge_formats or ok, w.shape[0], w.shape[1])
        for start in range(0, w.shape[0], step):
            scan.add(w[start:start + step])
        evidence += scan.evidence()
    return evidence, info
