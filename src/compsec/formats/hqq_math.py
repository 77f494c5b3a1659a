"""HQQ's 4-bit quantizer (hqq 0.2.x ``Quantizer.quantize`` with ``optimize=True``, ``axis=1``), in pure torch.

Reproduced operation for operation from ``hqq/core/quantize.py`` and ``hqq/core/optimize.py``
(``optimize_weights_proximal_legacy``, hqq's default solver) on CPU float32:

- groups are consecutive runs of ``group_size`` flat weights (``W.reshape(-1, group_size)``);
- ``scale = 15 / (max - min)`` (1.0 where ``|max - min| <= 1e-4``, clamped to ``<= 2e4``), ``zero = -min * scale``,
  rounded (``round_zero``, which ``BaseQuantizeConfig`` turns on for 4 bits);
- up to 20 proximal steps, each: ``W_q = clamp(round(W * scale + zero), 0, 15)``, ``W_r = (W_q - zero) / scale``,
  ``W_e = shrink_lp(W - W_r)`` (``lp = 0.7``, ``beta = 10``), ``zero = mean(W_q - (W - W_e) * scale)`` per group;
  the loop stops at the first step whose **whole-tensor** mean ``|W - W_r|`` does not improve (so every group's
  final ``zero`` depends on every weight of the tensor), the scale never changes;
- final codes ``clamp(round(W * scale + zero), 0, 15)`` (round half to even); stored: codes, ``1 / scale`` and
  ``zero`` (float32, one per group).
"""

from __future__ import annotations

import torch

LP_NORM = 0.7
BETA = 1e1
ITERS = 20
MAX_CODE = 15


def shrink_lp(x: torch.Tensor) -> torch.Tensor:
    """hqq's ``shrink_lp_op`` for ``lp_norm = 0.7``, ``beta = 10``."""
    out = torch.abs(x)
    out.sub_((1.0 / BETA) * out.pow(LP_NORM - 1)).clamp_min_(0.0)
    out.mul_(torch.sign(x))
    return out


def initial_params(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, zero)`` ``(n, 1)`` float32 from each group's min and max, before optimisation."""
    return params_from_range(groups.min(axis=1, keepdim=True)[0], groups.max(axis=1, keepdim=True)[0])


def params_from_range(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`initial_params` from each group's ``low`` (min) and ``high`` (max), ``(n, 1)`` float32."""
    denom = high - low
    scale = MAX_CODE / denom
    scale = torch.where(denom.abs() <= 1e-4, torch.full_like(scale, 1.0), scale)
    scale = scale.clamp(max=2e4)
    return scale, -low * scale


def codes_of(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """Final codes ``clamp(round(x * scale + zero), 0, 15)`` (float32, broadcastable)."""
    return torch.round(x * scale + zero).clamp_(0, MAX_CODE)


def optimize_zero(groups: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, steps: int | None = None,
                  ) -> tuple[torch.Tensor, int]:
    """The proximal solver's final ``zero`` (``(n, 1)``) and how many updates it made: hqq's whole-tensor early
    stop, or exactly ``steps`` updates (then every group's result depends on its own weights only)."""
    best = torch.tensor(torch.inf, dtype=torch.float32)
    for i in range(ITERS if steps is None else steps):
        w_q = torch.round(groups * scale + zero).clamp_(0, MAX_CODE)
        w_r = (w_q - zero) / scale
        w_e = shrink_lp(groups - w_r)
        zero = torch.mean(w_q - (groups - w_e) * scale, axis=1, keepdim=True)
        if steps is not None:
            continue
        error = torch.abs(groups - w_r).mean().float()
        if error < best:
            best = error
        else:
            return zero, i + 1
    return zero, ITERS if steps is None else steps


def quantize_groups(groups: torch.Tensor, round_zero: bool = True, steps: int | None = None,
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """``(codes (n, G) uint8, scale_inv (n, 1), zero (n, 1), updates)`` of float32 ``groups`` ``(n, G)``
    (``round_zero``: the optimiser starts from the rounded zero, as ``BaseQuantizeConfig`` sets for 4 bits;
    ``steps``: see :func:`optimize_zero`)."""
    scale, zero = initial_params(groups)
    if round_zero:
        zero = torch.round(zero)
    zero, updates = optimize_zero(groups, scale, zero, steps)
    return codes_of(groups, scale, zero).to(torch.uint8), 1.0 / scale, zero, updates
