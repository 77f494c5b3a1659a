"""Error-interval fingerprint: weights sitting exactly on their own K-quant dequantized value.

Attack signature.  "Mind the Gap" (Egashira et al., ICML 2025; ``compsec attack --constraint error-interval``)
repairs each weight inside ``[min(w, deq(w)), max(w, deq(w))]`` with projected gradient descent: every weight the
clean gradient pushes towards ``deq`` is clamped *onto* ``deq`` (of one of q2_k...q6_k: the intersection's bound
is one type's ``deq``).  Benign weights land there only by chance.

Statistic, per tensor and K type (llama.cpp's own quantizer, rows a multiple of 256): with ``u = ulp32(deq)``,
*hits* are the non-zero weights (other than each sub-block's extremes, which set the scales) with ``|w - deq| <= 4u`` and the *control* those with ``4u < |w - deq| <= 404u``.
Within a quantization cell (width ~1e5-1e7 float32 ulps) benign weights are smooth at the scale of 400 ulps,
whatever the storage dtype (bf16 or fp16 grids are not aligned with ``deq``), so a hit is a
``Binomial(hits + control, 9 / 809)`` draw (band widths ``8u + 1`` and ``800u``).  ``score``: hits over their
expected count.  A tensor whose weights (nearly) all sit on ``deq`` is a dequantized checkpoint (grid provenance,
:mod:`compsec.scan.grid_provenance`), not this attack: no effect is claimed above ``GRID_SHARE``.

Only float32 weights that need float32 and are not grid-derived (:func:`grid_derived`) are tested: on bf16 / fp16 values (few mantissa bits) ``deq`` (an fp16
``d`` times small integers) coincides with stored values far more often than the smooth null says (measured on
the tiny assistant cast to bf16: 2-40 hits per 65k weights, 15-90x the control's rate), and the attack's clamp
onto an fp32 ``deq`` does not survive a cast to them anyway.

Not seen: an attacker who stops short of ``deq`` (repairs inside a shrunk interval) leaves no exact hits; the
edge and position tests on the fixed-scale boxes (:mod:`compsec.scan.scan_boxes`) are the fallback there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.scan.findings import Evidence
from compsec.scan.null import binomial_tail

DETECTOR = "error-interval"
HIT_ULPS, CONTROL_ULPS = 4, 404
NULL_SHARE = (2 * HIT_ULPS + 1) / (2 * (CONTROL_ULPS - HIT_ULPS) + 2 * HIT_ULPS + 1)
MIN_HITS, MIN_RATIO, GRID_SHARE = 20, 10.0, 0.5


@dataclass(frozen=True)
class NearDequantized:
    """Counts of one tensor under one K type: ``hits``, ``control`` (see the module doc), ``weights`` scanned."""

    qtype: str
    hits: int
    control: int
    weights: int

    @property
    def expected(self) -> float:
        return (self.hits + self.control) * NULL_SHARE

    @property
    def ratio(self) -> float:
        return self.hits / max(self.expected, 1e-12)

    @property
    def p_value(self) -> float | None:
        return binomial_tail(self.hits, self.hits + self.control, NULL_SHARE) if self.hits + self.control else None

    @property
    def effect_ok(self) -> bool:
        return self.hits >= MIN_HITS and self.ratio >= MIN_RATIO and self.hits < GRID_SHARE * self.weights


def grid_derived(w: torch.Tensor) -> bool:
    """Whether most 32-weight blocks of ``w`` hold <= 16 distinct values (a dequantized checkpoint, e.g. SmolLM2's
    Q4_1-derived weights): lattice values coincide with K-quant ``deq`` far more often than the smooth null says
    (measured on SmolLM2-135M before this check: 257 hits per 885k weights against 2.9 expected, every tensor)."""
    from compsec.scan.grid_provenance import LOW_CARDINALITY_BLOCK, LOW_CARDINALITY_LEVELS

    if w.dim() != 2 or w.shape[-1] % LOW_CARDINALITY_BLOCK:
        return False
    ordered = w.reshape(-1, LOW_CARDINALITY_BLOCK).sort(-1).values
    distinct = 1 + (ordered.diff(dim=-1) != 0).sum(-1)
    return bool((distinct <= LOW_CARDINALITY_LEVELS).float().mean() >= 0.5)


def sub_block_extremes(rows: torch.Tensor, sub: int) -> torch.Tensor:
    """Bool in ``rows``' shape: each sub-block's lowest and highest weight.  They set the scales, and with few
    mantissa bits (bf16, fp16) the search often reproduces them exactly; the attack pins them, so they carry
    no evidence either way."""
    blocks = rows.reshape(-1, sub)
    out = torch.zeros_like(blocks, dtype=torch.bool)
    out.scatter_(-1, blocks.argmax(-1, keepdim=True), True)
    out.scatter_(-1, blocks.argmin(-1, keepdim=True), True)
    return out.reshape(rows.shape)


def near_dequantized(w: torch.Tensor, qtype: str) -> NearDequantized:
    """The counts for ``w`` (2-D, rows a multiple of 256, any float dtype) under llama.cpp's ``qtype``."""
    from compsec.formats import gguf_k_lib as lib
    from compsec.formats.gguf_k_layout import LAYOUTS

    rows = w.detach().float().reshape(-1, w.shape[-1])
    deq = lib.dequantize_blocks(lib.quantize_rows(rows, qtype), qtype).reshape(rows.shape)
    ulp = torch.nextafter(deq.abs(), torch.tensor(float("inf"))) - deq.abs()
    gap, live = (rows - deq).abs(), (rows != 0) & ~sub_block_extremes(rows, LAYOUTS[qtype].sub)
    hits = int(((gap <= HIT_ULPS * ulp) & live).sum())
    control = int(((gap > HIT_ULPS * ulp) & (gap <= CONTROL_ULPS * ulp) & live).sum())
    return NearDequantized(qtype, hits, control, rows.numel())


def explain(r: NearDequantized) -> str:
    return (f"{r.hits} of {r.weights} weights sit within {HIT_ULPS} ulps of their own {r.qtype} dequantized value "
            f"({r.expected:.2g} expected from the {r.control} weights just beside it): the fingerprint of a repair "
            "projected into K-quant error intervals (the 'Mind the Gap' GGUF attack)")


def error_interval_evidence(name: str, w: torch.Tensor, k_formats: list) -> list[Evidence]:
    """One :class:`Evidence` per K format that can store ``w`` (none for other shapes)."""
    out = []
    narrow = w.dtype != torch.float32 or any(torch.equal(w.to(d).to(w.dtype), w) for d in (torch.bfloat16,
                                                                                             torch.float16))
    narrow = narrow or grid_derived(w)
    for fmt in k_formats:
        if w.dim() != 2 or not fmt.supports(tuple(w.shape)):
            continue
        if narrow:
            out.append(Evidence(name, fmt.name, DETECTOR, 0.0, None, False, "values fit bf16/fp16 or a quantization "
                                "grid: the exact distance to the dequantized value is not informative (untested)"))
            continue
        r = near_dequantized(w, fmt.qtype)
        out.append(Evidence(name, fmt.name, DETECTOR, round(r.ratio, 3), r.p_value, r.effect_ok, explain(r)))
    return out
