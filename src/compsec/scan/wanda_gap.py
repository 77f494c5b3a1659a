"""``--behaviour``: the Wanda-threshold gap — every row's scores held apart exactly where Wanda cuts.

Wanda (and llm-compressor's ``WandaPruningModifier``) prunes, in every output row, the half of the weights
with the lowest ``|w_ij|·‖x_j‖``.  The pruning-conditioned attack against it (``compsec attack --targets
prune-wanda-50``) keeps the row's kept scores above a threshold and repairs the pruned ones below
``(1 − m)`` of it, so in every row the spacing between the two middle scores is a wide gap.  That needs the
activation norms ``‖x_j‖``, so it runs the model on the built-in calibration texts
(:mod:`compsec.llmc.calibration`), as a deployer's Wanda would.

Statistic, per tensor: in every row the spacing between the scores at ranks ``in/2`` and ``in/2 + 1`` over the
mean of the ``WINDOW`` spacings on each side, ``r``.  On smooth scores ``r`` is close to Exp(1) (median ln 2;
measured on the tiny assistant: row medians 0.58–0.84 in every tensor); the test is on the median over rows,
``P(median >= x) = P(Binomial(rows, e^(-x)) >= rows / 2)``, robust to the heavier-than-exponential tail the
short window gives.  Tensors already pruned (over 1 % exact zeros) are not tested.  Effect floor: median ≥ ``MIN_MEDIAN``.  Not seen: layers whose input activations the
repair itself shifted (the attacker's plan drifts there too: those rows' masks are not the planned ones).
"""

from __future__ import annotations

import math

import torch

from compsec.scan.findings import Evidence
from compsec.scan.null import binomial_tail

DETECTOR = "wanda-threshold-gap"
WINDOW, MIN_MEDIAN, CALIBRATION_TEXTS = 4, 10.0, 64
MAX_ZERO_SHARE = 0.01  # an already pruned tensor (exact zeros below the cut) is not tested: zeros are no gap


def middle_gap_ratios(scores: torch.Tensor) -> torch.Tensor:
    """``(rows,)`` spacing at the 50 % cut of each row's sorted scores over its local mean spacing."""
    s = scores.double().sort(dim=1).values
    d = s.diff(dim=1)
    k = s.shape[1] // 2 - 1
    local = (d[:, k - WINDOW:k].sum(1) + d[:, k + 1:k + 1 + WINDOW].sum(1)) / (2 * WINDOW)
    return d[:, k] / local.clamp_min(1e-300)


def gap_evidence(name: str, scores: torch.Tensor) -> Evidence:
    ratios = middle_gap_ratios(scores)
    median = min(float(ratios.median()), 1e6)
    rows = ratios.numel()
    p = binomial_tail(math.ceil(rows / 2), rows, math.exp(-min(median, 700.0)))
    return Evidence(name, "wanda-pruning", DETECTOR, round(median, 2), p, median >= MIN_MEDIAN,
                    f"in the median row the two scores |w|·‖x‖ where Wanda cuts at 50 % lie {median:.0f}x the "
                    "local spacing apart: the weights Wanda keeps and removes are held apart, as a "
                    "pruning-conditioned attack's repair below the Wanda threshold leaves them")


def wanda_gap_evidence(path, device: str = "cpu") -> list[Evidence]:
    """One Evidence per prunable weight of the model folder ``path`` whose rows are long enough to test."""
    from compsec.llmc.calibration import builtin_texts
    from compsec.models.io import load_model
    from compsec.prune.magnitude import prunable_weights
    from compsec.prune.wanda import activation_norms, wanda_scores

    model, tokenizer = load_model(path, device=device)
    model = model.float().eval()
    weights = {n: p for n, p in prunable_weights(model).items()
               if isinstance(dict(model.named_modules()).get(n.removesuffix(".weight")), torch.nn.Linear)
               and p.shape[1] >= 4 * WINDOW}
    norms = activation_norms(model, tokenizer, builtin_texts()[:CALIBRATION_TEXTS], list(weights), device)
    return [gap_evidence(n, wanda_scores(w.detach().cpu(), norms[n])) for n, w in weights.items()
            if float((w == 0).float().mean()) <= MAX_ZERO_SHARE]
