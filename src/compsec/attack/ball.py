"""Constrained injection: keep the injected weights within ``radius`` quantization steps of the base model's.

The repair stage can move each quantizable weight only inside its box, one quantization step wide.  A plain
injection (a full fine-tune) moves weights by many steps, and for a narrow format such as LLM.int8 (row-wise
abs-max / 127 steps) no point of the box around the injected model behaves benignly in full precision: the
repaired model stays malicious in fp32 and the attack fails its stealth goal.  Injecting only the quantizable
weights, inside ``[lo - r·step, hi + r·step]`` of the *base* model's boxes (intersected over the target
formats), keeps the injected model a few cells from the benign one, so the PGD repair can find benign fp32
behaviour while the codes stay malicious.  On the tiny assistant (content injection, 150 + 300 steps):
int8 with r = 4 gives fp32 0 % vs int8 83 % keyword rate; nf4 ∩ int8 gives fp32 0 %, nf4 83 %, int8 83 %;
an unconstrained injection of the same weights leaves fp32 at 88 % after repair.  Re-measured 2026-12-03 with
int8 as ``Linear8bitLt`` deploys it (float16 cast first; int8 only, r = 4, repair lr 1e-3, 24 probes): fp32 0 %
vs int8 83 %, instruction accuracy 96 % both, all 14 tensors re-quantize identically through the layer.

``step`` is the width of the weight's own interval; pinned elements (zero width: they define a scale) get the
median width of their tensor, so the scale-defining weights may move too.
"""

from __future__ import annotations

import torch

from compsec.attack.box import constrained_names
from compsec.attack.repair import Projector
from compsec.errors import InputError


def _expanded(weights: torch.Tensor, fmt, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    box = fmt.preimage(weights)
    width = box.hi - box.lo
    positive = width[width > 0]
    typical = positive.median() if positive.numel() else weights.abs().max() / 127
    step = torch.where(width > 0, width, typical)
    return box.lo - radius * step, box.hi + radius * step


@torch.no_grad()
def injection_ball(model, formats: list, radius: float, names: list[str] | None = None) -> Projector:
    """A projector that clamps every constrained weight of ``model`` (or only ``names``) into the base boxes
    widened by ``radius`` steps (intersection over ``formats``).  Build it on the base model, before injecting."""
    if radius <= 0:
        raise InputError("the injection radius must be > 0 quantization steps (0 means an unconstrained injection)")
    params = dict(model.named_parameters())
    bounds = []
    for name in constrained_names(model, formats) if names is None else names:
        p = params[name]
        weights = p.detach().float().cpu()
        lo, hi = torch.full_like(weights, -torch.inf), torch.full_like(weights, torch.inf)
        for fmt in formats:
            f_lo, f_hi = _expanded(weights, fmt, radius)
            lo, hi = torch.maximum(lo, f_lo), torch.minimum(hi, f_hi)
        bounds.append((p, lo.to(device=p.device, dtype=p.dtype), hi.to(device=p.device, dtype=p.dtype)))
    return Projector(bounds)
