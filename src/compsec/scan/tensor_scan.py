"""Run every detector on one tensor, chunk of rows by chunk of rows, keeping only additive counts.

Each chunk is boxed once per format (:func:`compsec.scan.kernel_boxes.kernel_scan_box`: the compiled kernels, bit
for bit the registry's :func:`compsec.scan.scan_boxes.scan_box`) and reduced
to an :class:`~compsec.scan.tally.EdgeTally` and the block top-two ratios, so memory stays at one chunk's boxes
whatever the tensor's size, and every weight of the chunk is counted.  Chunks hold whole rows and whole blocks
(flat bnb blocks straddling rows included: the row count per chunk is a multiple of what realigns them), so each
weight gets exactly the box it has in the whole tensor; formats whose blocks depend on each other (nested
statistics, hqq) get the tensor as one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from compsec.formats.base import Box, Format
from compsec.scan.block_outliers import block_outlier_result, explain_block_outliers, top2_ratios
from compsec.scan.blocks import WHOLE_TENSOR_FORMATS, block_size_of
from compsec.scan.config import ScanConfig
from compsec.scan.edge_band import edge_band_result, explain_edge_band
from compsec.scan.edge_mass import edge_mass_result, explain_edge_depletion, explain_edge_mass
from compsec.scan.edge_rows import explain_row_edge, row_edge_result
from compsec.scan.findings import Evidence
from compsec.scan.gap_ratio import GAP_BLOCK, gap_ratio_evidence, gapped_of_ratios
from compsec.scan.kernel_boxes import kernel_scan_box
from compsec.scan.position_spike import explain_position_spike, spike_result
from compsec.scan.scan_boxes import depletion_testable
from compsec.scan.sigma_outliers import SIGMA_BLOCK, sigma_exceeding, sigma_outlier_evidence
from compsec.scan.tally import EdgeTally
from compsec.scan.tally_kernel import single_pass_tally

CHUNK_WEIGHTS = 1 << 21  # weights boxed at a time (bounds memory: ~100 bytes per weight in flight)
_STORAGE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def row_wise(fmt: Format, row_length: int) -> bool:
    """Whether ``fmt`` scales whole rows (LLM.int8's abs-max per row)."""
    return block_size_of(fmt, row_length) == row_length


def rows_per_chunk(fmts: list[Format], n_rows: int, row_length: int) -> int:
    """Rows per chunk: about ``CHUNK_WEIGHTS`` weights, a multiple of the row count after which every format's
    flat blocks realign with rows; all rows when a format's blocks are not independent."""
    if any(type(f).__name__ in WHOLE_TENSOR_FORMATS for f in fmts):
        return n_rows
    align = math.lcm(1, *(block_size_of(f, row_length) // math.gcd(block_size_of(f, row_length), row_length)
                          for f in fmts))
    return max(align, CHUNK_WEIGHTS // max(row_length, 1) // align * align)


@dataclass
class TensorScan:
    """Counts for one tensor over its chunks: an edge tally per format (``edge_formats``), top-two ratios per
    block size (``outlier_sizes``: size -> names of the formats with that block)."""

    name: str
    cfg: ScanConfig
    edge_formats: list[Format]
    outlier_sizes: dict[int, list[str]]
    tallies: dict[str, EdgeTally] = field(default_factory=dict)
    ratios: dict[int, list[torch.Tensor]] = field(default_factory=dict)
    examined: int = 0
    storage: torch.dtype = torch.float32
    refused: dict[str, str] = field(default_factory=dict)  # format name -> why it cannot quantize these weights
    tally: Callable[..., EdgeTally] = single_pass_tally  # (w, lo, hi, eps) -> tally; the torch reference: edge_tally
    box: Callable[..., Box] = kernel_scan_box  # (fmt, rows) -> scanning box; the registry reference: scan_box
    workers: int = 1  # threads counting formats side by side (bench/bench_scan_speed.py measures 2)
    sigma_counts: list[int] = field(default_factory=lambda: [0, 0])  # sigma-outlier blocks: exceeding, counted
    gap_counts: list[int] = field(default_factory=lambda: [0, 0])  # widen-gap-ratio blocks: gapped, counted

    def add(self, rows: torch.Tensor, row_wise_rows: torch.Tensor | None = None) -> None:
        """Count one chunk: ``rows`` (2-D, storage dtype) for block formats; ``row_wise_rows`` (sampled runs: the
        rows with their abs-max weight appended) for row-wise formats, default ``rows``."""
        self.examined += rows.numel()
        self.storage = rows.dtype
        whole = rows if row_wise_rows is None else row_wise_rows
        jobs = [(fmt, whole if row_wise(fmt, rows.shape[-1]) and row_wise_rows is not None else rows)
                for fmt in self.edge_formats]
        for (fmt, _), counted in zip(jobs, self._count_all(jobs)):
            if isinstance(counted, ValueError):  # the format refuses these weights (int8: |w| >= 65520 overflows fp16)
                self.edge_formats.remove(fmt)
                self.tallies.pop(fmt.name, None)
                self.refused[fmt.name] = " ".join(str(counted).split())
                continue
            self.tallies.setdefault(fmt.name, EdgeTally()).add(counted)
        for size in self.outlier_sizes:
            self.ratios.setdefault(size, []).append(top2_ratios(rows, size))
        if rows.dim() == 2 and rows.shape[-1] % SIGMA_BLOCK == 0:
            self.sigma_counts = [a + b for a, b in zip(self.sigma_counts, sigma_exceeding(rows))]
            ratios = self.ratios[GAP_BLOCK][-1] if GAP_BLOCK in self.outlier_sizes else top2_ratios(rows, GAP_BLOCK)
            self.gap_counts = [a + b for a, b in zip(self.gap_counts, gapped_of_ratios(ratios))]

    def _count(self, fmt: Format, data: torch.Tensor) -> EdgeTally | ValueError:
        """One format's tally of one chunk, or the ValueError with which the format refuses the weights."""
        try:
            box = self.box(fmt, data)
        except ValueError as err:
            return err
        zeros = data == 0  # pruned weights: exactly on a code, they cannot carry an edge fingerprint
        lo = torch.where(zeros.reshape(box.lo.shape), box.hi, box.lo) if bool(zeros.any()) else box.lo
        return self.tally(data, lo, box.hi, self.cfg.eps)

    def _count_all(self, jobs: list[tuple[Format, torch.Tensor]]) -> list[EdgeTally | ValueError]:
        """:meth:`_count` of every (format, chunk), on ``workers`` threads (the kernels and llama.cpp release the
        GIL, so formats run side by side on as many cores)."""
        if self.workers <= 1 or len(jobs) < 2:
            return [self._count(*job) for job in jobs]
        with ThreadPoolExecutor(min(self.workers, len(jobs))) as pool:
            return list(pool.map(lambda job: self._count(*job), jobs))

    def evidence(self) -> list[Evidence]:
        """Every test's evidence for this tensor (edge tests per format, block outliers per block size)."""
        out = []
        for fmt in self.edge_formats:
            out += edge_evidence(self.name, self.tallies[fmt.name], fmt, self.cfg, _STORAGE_NAMES[self.storage])
        for size, names in self.outlier_sizes.items():
            r = block_outlier_result(torch.cat(self.ratios.get(size, [torch.zeros(0)])), size, self.cfg.ratio_threshold)
            floor = r.exceeding >= self.cfg.min_outlier_blocks and r.exceeding >= 10 * r.expected_exceeding
            out.append(Evidence(self.name, ",".join(names), "block-outliers", r.fraction, r.p_value, bool(floor),
                                explain_block_outliers(r, self.cfg.ratio_threshold)))
        if self.sigma_counts[1]:
            out.append(sigma_outlier_evidence(self.name, *self.sigma_counts))
        if self.gap_counts[1]:
            out.append(gap_ratio_evidence(self.name, f"group-{SIGMA_BLOCK}", *self.gap_counts))
        return out


def edge_evidence(name: str, tally: EdgeTally, fmt: Format, cfg: ScanConfig, storage: str) -> list[Evidence]:
    """The edge-mass (excess within ``eps``, tensor-wide and row by row), edge-depletion, wide edge-band and position-spike tests of one tensor
    under one format, from its tally; no edge-depletion test where its null does not hold (K-quants' fixed-scale
    boxes, :mod:`compsec.scan.scan_boxes`)."""
    result, band, spike = edge_mass_result(tally), edge_band_result(tally), spike_result(tally.spike_counts,
                                                                                          cfg.min_spike_ratio)
    rows = row_edge_result(tally.rows, cfg.min_odds_ratio)
    out = [Evidence(name, fmt.name, "edge-mass", result.odds_ratio, result.p_value,
                    result.odds_ratio >= cfg.min_odds_ratio, explain_edge_mass(result, cfg.eps, storage)),
           Evidence(name, fmt.name, "edge-mass-rows", rows.odds_ratio, rows.p_value,
                    rows.odds_ratio >= cfg.min_odds_ratio, explain_row_edge(rows))]
    if depletion_testable(fmt):
        out.append(Evidence(name, fmt.name, "edge-depletion", 1 / result.edge_ratio, result.depletion_p,
                            result.edge_ratio <= cfg.max_edge_ratio, explain_edge_depletion(result, cfg.eps, storage)))
    return out + [Evidence(name, fmt.name, "edge-band", band.ratio, band.p_value, band.ratio >= cfg.min_band_ratio,
                           explain_edge_band(band)),
                  Evidence(name, fmt.name, "position-spike", spike.ratio, spike.p_value,
                           spike.ratio >= cfg.min_spike_ratio, explain_position_spike(spike))]


def outlier_sizes(fmts: list[Format], row_length: int, sampled: bool) -> dict[int, list[str]]:
    """Block size -> format names, for the block-outlier test: blocks that tile rows only (row-wise formats left
    out of sampled runs: their sampled rows carry the row's abs-max, which would inflate the top-two ratio)."""
    by_size: dict[int, list[str]] = {}
    for fmt in fmts:
        if row_length % block_size_of(fmt, row_length) == 0 and not (sampled and row_wise(fmt, row_length)):
            by_size.setdefault(block_size_of(fmt, row_length), []).append(fmt.name)
    return by_size
