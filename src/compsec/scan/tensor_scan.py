"""Run every detector on the examined rows of one tensor.

Rows, not scattered weights, are examined because every supported format blocks along a row (GGUF: 32, bnb
4-bit: 64 flat — aligned with rows when the row length is a multiple of 64 —, LLM.int8: the whole row); a
format whose blocks would straddle the examined rows is skipped for that tensor rather than given wrong boxes.
"""

from __future__ import annotations

import torch

from compsec.formats.base import Format
from compsec.scan.block_outliers import block_outlier_test, explain_block_outliers
from compsec.scan.blocks import block_size_of
from compsec.scan.config import ScanConfig
from compsec.scan.edge_band import edge_band_test, explain_edge_band
from compsec.scan.edge_mass import edge_mass_test, explain_edge_depletion, explain_edge_mass
from compsec.scan.findings import Evidence, ScanFinding
from compsec.scan.grid_provenance import grid_provenance_batch
from compsec.scan.position_spike import explain_position_spike, position_spike_test
from compsec.scan.scan_boxes import batched_boxes, depletion_testable

_STORAGE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_NARROWER = {torch.float32: (torch.bfloat16, torch.float16), torch.float16: (torch.bfloat16,)}


def effective_storage(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` in the narrowest dtype that holds every value exactly (bf16, then fp16, else unchanged).

    A checkpoint trained in bf16 and saved as float32 only takes bf16 values; judged against the float32 grid,
    bf16 granularity inside a narrow interval would look like edge clustering (a false alarm).
    """
    for narrow in _NARROWER.get(rows.dtype, ()):
        cast = rows.to(narrow)
        if torch.equal(cast.to(rows.dtype), rows):
            return cast
    return rows


def usable(fmt: Format, rows: torch.Tensor, sampled: bool) -> bool:
    """Whether ``fmt`` can be checked on these examined rows (shape supported, blocks aligned with rows)."""
    if not fmt.supports(tuple(rows.shape)):
        return False
    return not sampled or rows.shape[-1] % block_size_of(fmt, rows.shape[-1]) == 0


def edge_evidence(name: str, rows: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor], fmt: Format,
                  cfg: ScanConfig) -> list[Evidence]:
    """The edge-mass (excess within ``eps``), edge-depletion, wide edge-band and position-spike tests of one tensor
    under one format, given its scanning box ``(lo, hi)`` (:mod:`compsec.scan.scan_boxes`); no edge-depletion
    test where its null does not hold (K-quants' fixed-scale boxes)."""
    result = edge_mass_test(rows, box[0], box[1], cfg.eps)
    band = edge_band_test(rows, box[0], box[1])
    spike = position_spike_test(rows, box[0], box[1], cfg.min_spike_ratio)
    storage = _STORAGE_NAMES[rows.dtype]
    out = [Evidence(name, fmt.name, "edge-mass", result.odds_ratio, result.p_value,
                    result.odds_ratio >= cfg.min_odds_ratio, explain_edge_mass(result, cfg.eps, storage))]
    if depletion_testable(fmt):
        out.append(Evidence(name, fmt.name, "edge-depletion", 1 / result.edge_ratio, result.depletion_p,
                            result.edge_ratio <= cfg.max_edge_ratio, explain_edge_depletion(result, cfg.eps, storage)))
    return out + [Evidence(name, fmt.name, "edge-band", band.ratio, band.p_value, band.ratio >= cfg.min_band_ratio,
                           explain_edge_band(band)),
                  Evidence(name, fmt.name, "position-spike", spike.ratio, spike.p_value,
                           spike.ratio >= cfg.min_spike_ratio, explain_position_spike(spike))]


def outlier_evidence(name: str, rows: torch.Tensor, fmts: list[Format], cfg: ScanConfig) -> list[Evidence]:
    """One block-outlier test per distinct block size among ``fmts``."""
    by_size: dict[int, list[str]] = {}
    for fmt in fmts:
        by_size.setdefault(block_size_of(fmt, rows.shape[-1]), []).append(fmt.name)
    out = []
    for size, names in by_size.items():
        r = block_outlier_test(rows, size, cfg.ratio_threshold)
        floor = r.exceeding >= cfg.min_outlier_blocks and r.exceeding >= 10 * r.expected_exceeding
        out.append(Evidence(name, ",".join(names), "block-outliers", r.fraction, r.p_value, bool(floor),
                            explain_block_outliers(r, cfg.ratio_threshold)))
    return out


def scan_batch(batch: list[tuple[str, torch.Tensor, bool]], fmts: list[Format], candidates: list[Format],
               cfg: ScanConfig) -> tuple[list[Evidence], list[ScanFinding]]:
    """Tamper evidence and information findings for a batch of ``(name, examined rows, sampled)`` (2-D rows in
    their storage dtype).  ``fmts``: formats whose boxes are checked; ``candidates``: provenance sources."""
    evidence, info, edge_jobs = [], [], []
    batch = [(name, effective_storage(rows), sampled) for name, rows, sampled in batch]
    origins = grid_provenance_batch([rows for _, rows, _ in batch],
                                    [[f for f in candidates if usable(f, rows, sampled)] for _, rows, sampled in batch])
    for (name, rows, sampled), origin in zip(batch, origins):
        ok = [fmt for fmt in fmts if usable(fmt, rows, sampled)]
        if origin is not None:
            info.append(ScanFinding(name, origin.source, "grid-provenance", origin.fraction, None,
                                    origin.explain(), severity="info"))
        evidence += outlier_evidence(name, rows, ok, cfg)
        if origin is None:  # positions of grid-derived weights are degenerate: no edge-mass test on them
            edge_jobs += [(fmt, name, rows) for fmt in ok]
    for fmt in fmts:
        for dtype in {rows.dtype for f, _, rows in edge_jobs if f is fmt}:
            jobs = [(name, rows) for f, name, rows in edge_jobs if f is fmt and rows.dtype == dtype]
            boxes = batched_boxes(fmt, [rows for _, rows in jobs])
            for (name, rows), box in zip(jobs, boxes):
                evidence += edge_evidence(name, rows, box, fmt, cfg)
    return evidence, info
