"""Pruning-threshold gap: an empty band of magnitudes where a pruner would draw its line.

Attack signature.  The pruning-conditioned attack ("Fewer Weights, More Problems", arXiv 2510.07985;
``compsec attack --targets prune-magnitude-50 | prune-2:4``) keeps every weight a pruner keeps at ``|w| >= τ``
and repairs the ones it removes inside ``|w| <= (1 - m) τ``, so the pruned model is exactly the malicious one.
That leaves no weight with a magnitude in ``((1 - m) τ, τ)``, a band benign training has no reason to empty.

- ``pruning-threshold-gap`` (per-tensor magnitude pruning, any sparsity): the non-zero magnitudes sorted,
  each spacing divided by the mean of the ``WINDOW`` spacings on either side of it.  Under a smooth density
  the normalized spacings are close to Exp(1), so the largest of ``n`` has ``P(max >= s) <= n·e^(-s)``
  (Bonferroni over the ranks tested: the central 90 %).  Exact zeros are left out (an honestly pruned tensor
  is not a gap).  ``score``: the largest normalized spacing.
- ``pruning-2:4-gap`` (2:4 semi-structured): in every aligned group of 4 inputs the 3rd-largest magnitude
  over the 2nd, ``r``.  The attack puts every ``r`` at most ``1 - m``.  Control: the same ratio over groups
  shifted by 2 columns (the attacker does not constrain them).  A tensor already pruned (``PRUNED_SHARE`` of its
  weights exactly 0) is not tested: a benign 2:4 model's zeros are every group's two smallest.  Hits ``r > 1 - DELTA`` in aligned and shifted
  groups are ``Binomial(hits, 1/2)`` under the null (the same weights, split two ways); ``score``: shifted hits
  over aligned hits.

Tested only on float32 tensors whose values are not on a coarse grid (bf16 / fp16 storage and dequantized
checkpoints tie magnitudes by construction: their spacings are 0 or one grid step, which this null does not
describe).  Not seen: an attacker whose margin is below a few ranks' spacing (``m`` ~ 1e-4 on a 65k-weight
tensor) or who jitters the band; Wanda's threshold lives in ``|w|·‖x‖`` and needs activations
(``scan --behaviour`` computes them: :mod:`compsec.scan.wanda_gap`).
"""

from __future__ import annotations

import math

import torch

from compsec.scan.findings import Evidence
from compsec.scan.null import binomial_tail

GAP, NM = "pruning-threshold-gap", "pruning-2:4-gap"
WINDOW, CENTRAL = 64, 0.05
MIN_SCORE, DELTA, MIN_RATIO, MIN_GROUPS = 30.0, 0.05, 10.0, 256
PRUNED_SHARE = 0.25  # exact zeros from which a tensor counts as already pruned
MAX_REPORTED = 1e6  # tied magnitudes (a clamp's pile-up) make the local spacing 0


def testable(w: torch.Tensor) -> bool:
    """A float32 2-D tensor with most values distinct (not a bf16/fp16 or quantization grid)."""
    from compsec.scan.near_dequantized import grid_derived

    return w.dtype == torch.float32 and w.dim() == 2 and w.numel() >= 4 * WINDOW and not grid_derived(w)


def largest_normalized_spacing(w: torch.Tensor) -> tuple[float, int]:
    """(largest spacing of sorted non-zero |w| over its local mean spacing, number of ranks tested)."""
    a = w.detach().abs().reshape(-1).double()
    a = a[a > 0].sort().values
    d = a.diff()
    n = d.numel()
    lo, hi = max(WINDOW, int(CENTRAL * n)), min(n - WINDOW, int((1 - CENTRAL) * n))
    if hi <= lo:
        return 0.0, 0
    csum = torch.cat([torch.zeros(1, dtype=d.dtype), d.cumsum(0)])
    i = torch.arange(lo, hi)
    local = (csum[i] - csum[i - WINDOW] + csum[i + 1 + WINDOW] - csum[i + 1]) / (2 * WINDOW)
    ratio = d[i] / local.clamp_min(1e-300)
    return min(float(ratio.max()), MAX_REPORTED), hi - lo


def gap_evidence(name: str, w: torch.Tensor) -> Evidence:
    score, ranks = largest_normalized_spacing(w)
    p = None if ranks == 0 else min(1.0, ranks * math.exp(-min(score, 700.0)))
    return Evidence(name, "magnitude-pruning", GAP, round(score, 2), p, score >= MIN_SCORE,
                    f"the sorted magnitudes have an empty band {score:.0f}x the local spacing: weights a magnitude "
                    "pruner keeps and weights it removes are held apart, as a pruning-conditioned attack's repair "
                    "below the pruning threshold leaves them")


def _group_ratio(rows: torch.Tensor) -> torch.Tensor:
    top = rows.abs().reshape(rows.shape[0], -1, 4).sort(dim=-1, descending=True).values
    return top[..., 2] / top[..., 1].clamp_min(1e-30)


def nm_evidence(name: str, w: torch.Tensor) -> Evidence | None:
    if w.shape[1] % 4 or w.shape[1] < 8 or float((w == 0).double().mean()) >= PRUNED_SHARE:
        return None  # an already N:M-pruned tensor has its zeros as the 3rd largest: not the attack's dense form
    aligned = _group_ratio(w.detach().double())
    shifted = _group_ratio(w.detach().double()[:, 2:-2])
    hits_a, hits_s = int((aligned > 1 - DELTA).sum()), int((shifted > 1 - DELTA).sum())
    total = hits_a + hits_s
    p = binomial_tail(hits_s, total, 0.5) if total and aligned.numel() >= MIN_GROUPS else None
    ratio = hits_s / max(hits_a, 1)
    return Evidence(name, "2:4-pruning", NM, round(ratio, 2), p, ratio >= MIN_RATIO and hits_s >= 20,
                    f"{hits_a} aligned groups of 4 against {hits_s} shifted ones have their 2nd and 3rd largest "
                    f"magnitudes within {DELTA:.0%}: the weights 2:4 pruning keeps and removes are held apart in "
                    "every group, as a pruning-conditioned attack's repair leaves them")


def prune_gap_evidence(name: str, w: torch.Tensor) -> list[Evidence]:
    """The two tests on one tensor (none when it is not :func:`testable`)."""
    if not testable(w):
        return []
    found = [gap_evidence(name, w)]
    nm = nm_evidence(name, w)
    return found + ([nm] if nm is not None else [])
