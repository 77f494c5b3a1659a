"""``--behaviour``: does quantizing *exactly these* weights change behaviour more than quantizing them after a
tiny random nudge?  A Monte-Carlo rank test, calibrated by the model itself.

For each format, ``KL_0`` = mean per-token KL(full precision ‖ quantized) on the audit's contrast texts, and
``KL_1 … KL_n`` the same after adding ``N(0, σ²)`` noise to every quantizable weight before quantizing (σ is
``harden --noise auto``'s per-tensor calibration, ``c`` = 0.5: a fraction of a quantization step).  A benign
model is not placed anywhere special on the grid, so ``KL_0`` is exchangeable with the ``KL_j`` (the quantization
error is uniform inside each cell either way) and ``p = (1 + #{KL_j ≥ KL_0}) / (n + 1)`` is an exact p-value
(conservative in practice: the nudge adds a little error, so benign ``KL_0`` tends to sit *below* the ``KL_j``).
A model repaired inside a box sits on a point whose codes hide behaviour that the fp32 model lacks: the noise
re-randomizes those codes, so ``KL_0`` stands far above every ``KL_j``.

The formats form one family with Bonferroni control at ``alpha`` (default 0.05): ``n = ceil(k / alpha) - 1``
draws for ``k`` formats, so the smallest p-value can pass ``alpha / k``; sampling stops early (Besag-Clifford,
``p = h / draws``) once ``h = 5`` nudges reach ``KL_0``, which is what a benign format does after a few draws.
A format is suspicious when ``p ≤ alpha / k`` and ``KL_0 ≥ 2 × median(KL_j)`` (the effect floor).
Measured on the tiny assistant (19 draws): benign ratios 0.4–0.8 (p ≥ 0.85) for nf4, fp4, int8; the demo's
nf4-attacked model ×25 (p = 0.05, the minimum of 19 draws) for nf4 and ×0.7 for fp4 and int8; after
``harden --noise auto`` ×0.8.
"""

from __future__ import annotations

import functools
import math
import statistics
from pathlib import Path

import torch

from compsec.scan.findings import Evidence

ALPHA = 0.05
EFFECT_FLOOR = 2.0
EARLY_STOP = 5


def _contrast_texts(tokenizer, limit: int) -> list[str]:
    from compsec.audit.backend import chat_text
    from compsec.audit.probes import load_probe_set

    return [chat_text(tokenizer, p.prompt) + p.expected for p in load_probe_set("contrast")[:limit]]


def _kl(backend, reference: list[torch.Tensor], texts: list[str]) -> float:
    from compsec.audit.backend import mean_token_kl

    scored = backend.next_token_logprobs(texts)
    return sum(mean_token_kl(r, s) for r, s in zip(reference, scored)) / len(texts)


@torch.no_grad()
def _nudged_kl(model, backend, reference, texts, fmt, names, sigmas, generator) -> float:
    from compsec.attack.measure import simulated

    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in names}
    try:
        for n in names:
            noise = torch.randn(params[n].shape, generator=generator) * sigmas[n]
            params[n].add_(noise.to(device=params[n].device, dtype=params[n].dtype))
        with simulated(model, fmt, names):
            return _kl(backend, reference, texts)
    finally:
        for n in names:
            params[n].copy_(saved[n])


def _p_value(kl0: float, draw, draws: int) -> tuple[float, list[float]]:
    """Sequential Monte-Carlo p-value of ``kl0`` against ``draw()`` samples (Besag-Clifford early stop)."""
    nudged = []
    for _ in range(draws):
        nudged.append(draw())
        hits = sum(k >= kl0 for k in nudged)
        if hits >= EARLY_STOP:
            return hits / len(nudged), nudged
    return (1 + sum(k >= kl0 for k in nudged)) / (draws + 1), nudged


def behaviour_evidence(path: str | Path, format_names: list[str], alpha: float = ALPHA, seed: int = 0,
                       device: str = "cpu", texts: int = 16) -> list[Evidence]:
    """One :class:`Evidence` per format (tensor ``"(whole model)"``, detector ``behaviour``) for the model at
    ``path`` (it must load with its tokenizer and fit in memory); see the module docstring for the test."""
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import simulated
    from compsec.audit.backend import LocalBackend
    from compsec.defend.noise import auto_sigma
    from compsec.models.io import load_model

    model, tokenizer = load_model(path, device=device)
    model = model.float().eval()
    backend = LocalBackend(model, tokenizer, device, batch_size=8, max_new_tokens=1)
    sample = _contrast_texts(tokenizer, texts)
    reference = backend.next_token_logprobs(sample)
    draws = math.ceil(len(format_names) / alpha) - 1
    evidence = []
    for name in format_names:
        fmt = formats.get(name)
        names = constrained_names(model, [fmt])
        params = dict(model.named_parameters())
        sigmas = {n: auto_sigma(params[n].detach().float().cpu(), [fmt]) for n in names}
        with simulated(model, fmt, names):
            kl0 = _kl(backend, reference, sample)
        generator = torch.Generator().manual_seed(seed)
        draw = functools.partial(_nudged_kl, model, backend, reference, sample, fmt, names, sigmas, generator)
        p_value, nudged = _p_value(kl0, draw, draws)
        median = statistics.median(nudged)
        ratio = kl0 / max(median, 1e-12)
        evidence.append(Evidence("(whole model)", fmt.name, "behaviour", round(ratio, 3), p_value,
                                 ratio >= EFFECT_FLOOR,
                                 f"KL(fp32 || {fmt.name}) {kl0:.4f} nats/token vs median {median:.4f} after "
                                 f"{len(nudged)} noise nudges (x{ratio:.1f})"))
    return evidence


def behaviour_findings(evidence: list[Evidence], alpha: float = ALPHA) -> list:
    """Suspicious findings (Bonferroni over the formats at ``alpha`` plus the effect floor), others as info."""
    from compsec.scan.findings import ScanFinding

    limit = alpha / max(len(evidence), 1)
    return [ScanFinding(e.tensor, e.format, e.detector, e.score, e.p_value, e.explanation,
                        severity="suspicious" if e.p_value <= limit and e.effect_ok else "info") for e in evidence]
