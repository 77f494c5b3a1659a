"""Apply a format to a whole model (fast simulation) and rank its tensors by quantization error.

``quantize_model(model, fmt)`` replaces every quantizable weight (architecture table) by
``fmt.dequantize(fmt.quantize(w))``; the forward pass then computes what a deployment of that format computes,
up to the kernels' own float arithmetic (tests/formats/test_apply.py compares the logits with transformers'
real bitsandbytes modules).  ``layer_report(model, fmt)`` is the paper's analysis of why some models are easier
to attack: per tensor, relative quantization error, weight magnitudes and preimage interval widths.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch

from compsec.formats.base import Format


def quantizable_names(model, fmt: Format) -> list[str]:
    """Names of ``model``'s quantizable weights (architecture table) whose shape ``fmt`` can store."""
    from compsec.models.linear import quantizable_weights

    return [q.name for q in quantizable_weights(model) if fmt.supports(tuple(q.shape))]


def quantize_model(model: torch.nn.Module, fmt: Format, inplace: bool = False) -> torch.nn.Module:
    """``model`` (a copy unless ``inplace``) with its quantizable weights replaced by their dequantized values.

    Weights keep their dtype and device; embeddings, norms, biases and lm_head are untouched.
    """
    target = model if inplace else copy.deepcopy(model)
    params = dict(target.named_parameters())
    with torch.no_grad():
        for name in quantizable_names(target, fmt):
            w = params[name]
            w.copy_(fmt.dequantize(fmt.quantize(w.detach())).to(device=w.device, dtype=w.dtype))
    return target


@dataclass(frozen=True)
class LayerStats:
    """One tensor under one format.  ``relative_error`` = ‖w − deq(q(w))‖ / ‖w‖; magnitudes are |w| quantiles;
    widths are preimage interval widths (hi − lo) over unpinned weights; ``pinned`` is the pinned fraction."""

    tensor: str
    relative_error: float
    abs_median: float
    abs_p99: float
    width_median: float
    width_p90: float
    pinned: float

    def to_json(self) -> dict:
        return asdict(self)


def layer_report(model: torch.nn.Module, fmt: Format, sample: int = 65536) -> list[LayerStats]:
    """Per-tensor statistics, sorted by relative error (largest first).  Widths come from the first ``sample``
    weights of each tensor, in whole rows, so the report stays fast on large models."""
    params = dict(model.named_parameters())
    rows = [_stats(name, params[name].detach(), fmt, sample) for name in quantizable_names(model, fmt)]
    return sorted(rows, key=lambda r: r.relative_error, reverse=True)


def _stats(name: str, w: torch.Tensor, fmt: Format, sample: int) -> LayerStats:
    w = w.float().cpu()
    error = (w - fmt.dequantize(fmt.quantize(w))).norm() / w.norm().clamp_min(1e-30)
    part = w[: max(1, sample // w.shape[-1])] if w.dim() == 2 else w.reshape(-1)[:sample]
    box = fmt.preimage(part)
    pinned = box.pinned
    widths = box.width[~pinned] if bool((~pinned).any()) else torch.zeros(1)
    magnitudes = w.abs().reshape(-1)
    if magnitudes.numel() > 1 << 20:
        magnitudes = magnitudes[:: magnitudes.numel() // (1 << 20) + 1]
    return LayerStats(name, float(error), float(magnitudes.median()), float(magnitudes.quantile(0.99)),
                      float(widths.median()), float(widths.quantile(0.9)), float(pinned.float().mean()))
