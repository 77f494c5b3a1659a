"""Per-group outlier clipping as "Widening the Gap" (arXiv 2605.15152) ships it: zero or divide the outliers.

Per group of ``group`` consecutive weights along a row, a weight is an outlier when ``|w| > k * sigma`` with
``sigma = median(|w|) / 0.6745`` over the group (the Gaussian MAD scale, which one injected weight cannot move).
``mode="zero"`` sets outliers to 0; ``mode="divide"`` divides them by ``divisor`` (100 undoes the paper's factor).
Natural weights rarely pass ``k = 10`` (a 10-sigma weight); an injected x100 weight always does.

Worked example: a group with ``median |w| = 0.0135`` (sigma 0.02) and an injected 1.5: ``1.5 > 10 * 0.02``, so
zero-clipping writes 0 and divide-clipping 0.015; the group's other weights keep their codes.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError

MODES = ("zero", "divide")
GROUP = 32
K_SIGMA = 10.0
MAD_TO_SIGMA = 0.6745


def group_sigma(w: torch.Tensor, group: int = GROUP) -> torch.Tensor:
    """Robust scale per group: ``median(|w|) / 0.6745``, shape ``(numel / group, 1)``."""
    if w.numel() % group:
        raise InputError(f"{w.numel()} weights are not a whole number of {group}-weight groups")
    return w.detach().float().abs().reshape(-1, group).median(dim=1, keepdim=True).values / MAD_TO_SIGMA


@torch.no_grad()
def clip_group_outliers(w: torch.Tensor, mode: str = "zero", group: int = GROUP, k: float = K_SIGMA,
                        divisor: float = 100.0) -> tuple[torch.Tensor, int]:
    """A copy of ``w`` (same shape, dtype) with every group outlier zeroed or divided, and how many there were."""
    if mode not in MODES or k <= 0 or divisor <= 1:
        raise InputError(f"mode={mode!r} must be one of {MODES}, k={k} > 0 and divisor={divisor} > 1")
    blocks = w.detach().float().reshape(-1, group).clone()
    outlier = blocks.abs() > k * group_sigma(w, group)
    blocks = torch.where(outlier, torch.zeros_like(blocks) if mode == "zero" else blocks / divisor, blocks)
    return blocks.reshape(w.shape).to(w.dtype), int(outlier.sum())


@torch.no_grad()
def group_clip_model_(model, mode: str = "zero", group: int = GROUP, k: float = K_SIGMA,
                      names: list[str] | None = None) -> dict[str, int]:
    """:func:`clip_group_outliers` on the weights ``names`` (default: every quantizable weight) of ``model`` whose
    rows hold whole ``group``s, in place; returns the number of outliers clipped per weight (0 entries left out)."""
    from compsec.models.linear import quantizable_weights

    params = dict(model.named_parameters())
    clipped = {}
    for name in names if names is not None else [q.name for q in quantizable_weights(model)]:
        p = params.get(name)
        if p is None or p.dim() != 2 or p.shape[-1] % group:
            continue
        new, count = clip_group_outliers(p.detach().cpu(), mode, group, k)
        if count:
            p.copy_(new.to(p.device))
            clipped[name] = count
    return clipped
