"""Seeded Gaussian weight noise with one sigma per tensor, and the ``auto`` calibration of that sigma.

Why noise defends.  A quantization-conditioned attack keeps every constrained weight inside the intersection of
the target formats' preimages (boxes) and pushes it, during repair, towards the side of its box that makes the
full-precision model benign: many weights end at a box edge.  Adding ``N(0, sigma^2)`` to each weight moves the
ones near an edge across it, so the deployed codes stop being the attacker's chosen ones, while a sigma far
below the weights' own scale leaves full-precision behaviour intact.

``auto``.  Per tensor, ``sigma = c * min_f median(half-width of f's intervals)`` over the target formats ``f``
that can store the tensor (pinned abs-max elements excluded): the finest target format sets the scale.  With
``c = 1`` a weight sitting on an edge of its finest interval leaves it with probability 1/2; the default ``c``
(:data:`DEFAULT_C`) comes from ``bench/bench_defence.py`` (fraction of codes changed versus fp32 KL).

Measured on the tiny assistant (fp32 KL on generic text, nats/token; NF4 quantization itself: 0.007) and on an
NF4 content-injection attack (NF4 keyword rate 90 % undefended, 30 probes):

    calibrated on     c     median sigma   NF4 codes changed   fp32 KL    NF4 keyword rate   fp32 utility
    nf4,int8 (int8)   0.5   2.2e-4         1.9 %               3e-5       -                  -
    nf4,int8 (int8)   1     4.4e-4         3.7 %               1.4e-4     -                  -
    nf4 (attack)      0.25  1.4e-3         17 %                0.002      0 %                +0 points
    nf4 (attack)      0.5   2.8e-3         25 %                0.008      0 %                +0 points
    nf4 (attack)      1     5.6e-3         41 %                -          0 %                +0 points

``c = 0.5`` is the default: it already removes the attack, and its fp32 drift is about the size of NF4's own
rounding error, half of what ``c = 1`` costs.  An attacker who expects the noise can shrink his box by a few
sigma (:mod:`compsec.defend.adaptive`); a larger ``c`` is the defender's answer, at an fp32 cost.

Worked example: int8 row abs-max ``a = 0.1`` gives intervals ``a / 127 = 7.9e-4`` wide, half-width ``3.9e-4``;
NF4 with the same block abs-max has intervals about 10x wider, so int8 sets ``sigma = c * 3.9e-4``.

Noise is drawn in float32 from a generator seeded by ``(seed, tensor name)``: the same seed gives the same
noise whatever the order or subset of tensors, and the result is cast back to the weight's dtype.
"""

from __future__ import annotations

import hashlib

import torch

from compsec.errors import InputError

DEFAULT_C = 0.5
AUTO = "auto"
CALIBRATION_WEIGHTS = 65536


def parse_noise(spec: str | float) -> str | float:
    """``"auto"`` or a non-negative sigma from a CLI value such as ``"auto"``, ``"1e-3"`` or ``0.001``."""
    if isinstance(spec, str) and spec.strip().lower() == AUTO:
        return AUTO
    try:
        sigma = float(spec)
    except (TypeError, ValueError):
        raise InputError(f"--noise {spec!r} is neither 'auto' nor a number; use e.g. --noise auto or 1e-3") from None
    if not sigma >= 0 or sigma == float("inf"):
        raise InputError(f"--noise {spec!r} must be a finite sigma >= 0 (or 'auto')")
    return sigma


def tensor_seed(seed: int, name: str) -> int:
    """A 63-bit seed for tensor ``name`` derived from the run's ``seed`` (stable across runs and platforms)."""
    digest = hashlib.sha256(f"compsec-noise:{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def gaussian_like(w: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``sigma * N(0, 1)`` noise with ``w``'s shape, float32 on CPU (reproducible everywhere), from ``seed``."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(tuple(w.shape), generator=generator, dtype=torch.float32) * sigma


def median_half_width(w: torch.Tensor, fmt, max_weights: int = CALIBRATION_WEIGHTS) -> float | None:
    """Median half-width of ``fmt``'s exact fp32 intervals around ``w`` (pinned elements excluded); None when
    every element is pinned (e.g. an all-zero tensor).  Large tensors are calibrated on their first rows
    (at least one, about ``max_weights`` weights): exact boxes of whole rows, a sample of the median."""
    rows = max(1, max_weights // max(w.shape[-1], 1)) if w.dim() >= 2 else w.shape[0]
    box = fmt.preimage(w.detach()[:rows].cpu().float())
    free = ~box.pinned
    if not bool(free.any()):
        return None
    return float((box.width[free] / 2).median())


def auto_sigma(w: torch.Tensor, formats: list, c: float = DEFAULT_C) -> float:
    """``c`` times the smallest median half-width among ``formats`` that support ``w`` (0 if none applies)."""
    if c < 0:
        raise InputError(f"the auto-noise multiplier c={c} must be >= 0")
    widths = [median_half_width(w, f) for f in formats if f.supports(tuple(w.shape))]
    widths = [x for x in widths if x is not None]
    return c * min(widths) if widths else 0.0


def sigmas_for(weights: dict[str, torch.Tensor], noise: str | float, formats: list,
               c: float = DEFAULT_C) -> dict[str, float]:
    """Sigma per tensor name: ``auto`` calibrates each (see module docstring); a number applies to all."""
    if noise == AUTO:
        if not formats:
            raise InputError("--noise auto needs target formats to calibrate against; pass e.g. --formats nf4,int8")
        return {name: auto_sigma(w, formats, c) for name, w in weights.items()}
    return {name: float(noise) for name in weights}


@torch.no_grad()
def add_noise_(params: dict[str, torch.nn.Parameter], sigmas: dict[str, float], seed: int) -> dict[str, float]:
    """Add seeded Gaussian noise to each ``params[name]`` in place with ``sigmas[name]``.

    Returns the fraction of each tensor's elements whose stored value actually changed (a sigma below the
    dtype's resolution changes nothing after the cast back).
    """
    changed = {}
    for name, sigma in sigmas.items():
        p = params[name]
        if sigma == 0:
            changed[name] = 0.0
            continue
        before = p.detach().clone()
        noisy = p.detach().float().cpu() + gaussian_like(p, sigma, tensor_seed(seed, name))
        p.copy_(noisy.to(device=p.device, dtype=p.dtype))
        changed[name] = float((p != before).float().mean())
    return changed


def code_change_fraction(before: torch.Tensor, after: torch.Tensor, fmt) -> float:
    """Fraction of ``fmt`` codes that differ between quantizing ``before`` and ``after`` (same shape)."""
    q0, q1 = fmt.quantize(before.detach().cpu().float()), fmt.quantize(after.detach().cpu().float())
    return float((q0.codes.reshape(-1).long() != q1.codes.reshape(-1).long()).float().mean())
