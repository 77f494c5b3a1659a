"""The error-interval constraint of "Mind the Gap" (Egashira et al., ICML 2025) for GGUF K-quants.

K-quant scales come from a search over each 256-weight super-block, so no exact per-weight box exists
(:mod:`compsec.formats.gguf_k`).  The published attack repairs instead inside each weight's *error interval*
``[min(w, deq(w)), max(w, deq(w))]``: moving a weight towards its own dequantized value lowers the error the
scale search minimises, so the search tends to keep its scales and the codes stay.  Heuristic, not a proof;
:func:`identical_share` measures with llama.cpp how often it holds.  Per K type ``t``:

- ``deq`` is llama.cpp's dequantized weight (``ggml_quantize_chunk`` then ``gguf.quants``);
- frozen (``lo == hi == w``): every weight of the sub-block(s) holding the super-block's largest scale (or
  min), which set the fp16 ``d``/``dmin``, and each sub-block's lowest and highest weight (the search's seeds);
- widened: where ``|w - deq| < WIDEN[t] * step`` (``step = d * sc``, the sub-block's quantization step) the
  interval becomes ``[deq - WIDEN[t] * step, deq + WIDEN[t] * step]``, which still lies inside the code's
  rounding cell under the stored scales (``WIDEN < 0.5``).

:func:`error_interval_box` intersects the types' intervals, so a point inside is meant to keep the codes of
every type at once.  Each interval contains ``w``, so the intersection is never empty.
Worked example (Q4_K, step 0.01): ``w = 0.123``, ``deq = 0.120``: interval ``[0.120, 0.123]``; ``w = 0.1201``
(``|w - deq| = 0.0001 < 0.1 * 0.01``): widened to ``[0.119, 0.121]``.
"""

from __future__ import annotations

import torch

from compsec.formats.base import Box

QK_K = 256
K_TYPES = ("q2_k", "q3_k", "q4_k", "q5_k", "q6_k")
# Fraction of the sub-block's step below which an interval is widened (to that half-width around deq).
WIDEN = {"Q2_K": 0.1, "Q3_K": 0.1, "Q4_K": 0.1, "Q5_K": 0.1, "Q6_K": 0.1}


def _quantized(w: torch.Tensor, qtype: str):
    """llama.cpp's raw blocks of ``w``, its codes and scales per super-block, and ``deq`` in ``w``'s shape."""
    from compsec.formats import gguf_k_layout as layouts
    from compsec.formats import gguf_k_lib as lib

    raw = lib.quantize_rows(w.detach().reshape(-1, w.shape[-1]), qtype)
    _, scales = layouts.parse(raw, qtype)
    return raw, scales, lib.dequantize_blocks(raw, qtype).reshape(w.shape)


def scale_setters(scales: dict[str, torch.Tensor]) -> torch.Tensor:
    """Bool ``(n_super, n_sub)``: sub-blocks whose scale (or min) is their super-block's largest; they set the
    fp16 super-scales ``d``/``dmin``."""
    big = scales["sc"].abs() == scales["sc"].abs().amax(-1, keepdim=True)
    if "m" in scales:
        big |= scales["m"] == scales["m"].amax(-1, keepdim=True)
    return big


def frozen_mask(w: torch.Tensor, scales: dict[str, torch.Tensor], sub: int) -> torch.Tensor:
    """Bool in ``w``'s shape: the weights the interval pins (scale setters' sub-blocks, sub-block extremes)."""
    blocks = w.detach().float().reshape(-1, QK_K // sub, sub)
    extremes = torch.zeros_like(blocks, dtype=torch.bool)
    extremes.scatter_(-1, blocks.argmax(-1, keepdim=True), True)
    extremes.scatter_(-1, blocks.argmin(-1, keepdim=True), True)
    setters = scale_setters(scales).unsqueeze(-1).expand_as(extremes)
    return (extremes | setters).reshape(w.shape)


def type_interval(w: torch.Tensor, qtype: str, widen: float | None = None) -> Box:
    """The error interval of ``w`` (float32, last dimension a multiple of 256) under K type ``qtype``."""
    from compsec.formats import gguf_k_layout as layouts

    layout = layouts.LAYOUTS[qtype]
    widen = WIDEN[qtype] if widen is None else widen
    if not 0 <= widen < 0.5:
        raise ValueError(f"widen={widen} must lie in [0, 0.5): wider leaves the code's rounding cell")
    w = w.detach().float()
    _, scales, deq = _quantized(w, qtype)
    step, _ = layouts.sub_scales(scales, layout)
    margin = (widen * step.abs()).repeat_interleave(layout.sub, dim=-1).reshape(w.shape)
    small = (w - deq).abs() < margin
    lo = torch.where(small, deq - margin, torch.minimum(w, deq))
    hi = torch.where(small, deq + margin, torch.maximum(w, deq))
    pin = frozen_mask(w, scales, layout.sub)
    return Box(torch.where(pin, w, lo), torch.where(pin, w, hi))


def error_interval_box(w: torch.Tensor, formats: list) -> Box:
    """The intersection of :func:`type_interval` over the K-quant ``formats`` (registered ``q2_k``...)."""
    boxes = [type_interval(w, fmt.qtype) for fmt in formats]
    out = boxes[0]
    for other in boxes[1:]:
        out = Box(torch.maximum(out.lo, other.lo), torch.minimum(out.hi, other.hi))
    return out


def identical_share(w: torch.Tensor, anchor: torch.Tensor, qtype: str) -> dict[str, float]:
    """How much of llama.cpp's ``qtype`` quantization of ``w`` equals that of ``anchor``: the share of identical
    bytes and of byte-identical super-blocks."""
    new, _, _ = _quantized(w.float(), qtype)
    old, _, _ = _quantized(anchor.float(), qtype)
    same = torch.from_numpy(new == old)
    return {"bytes": round(float(same.float().mean()), 5), "super_blocks": round(float(same.all(1).float().mean()), 5)}
