"""Wanda pruning (Sun et al., 2023): score ``|W_ij| · ‖X_j‖₂``, prune the lowest scores of every output row.

``X_j`` is input feature ``j`` of the linear layer over every calibration token, so a weight counts for as
much as the activation it multiplies. llm-compressor's ``WandaPruningModifier`` computes the same score (as
``|W| · sqrt(mean_t x_tj²)``, a constant factor away) and prunes per output row; :func:`wanda_masks` uses the
same ranking so compsec can plan and check masks without the side environment.

Shapes: a ``torch.nn.Linear`` weight is ``(out, in)``; its norms vector is ``(in,)``.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError
from compsec.prune.magnitude import check_sparsity


@torch.no_grad()
def activation_norms(model, tokenizer, texts: list[str], names: list[str], device="cpu") -> dict[str, torch.Tensor]:
    """``{weight name: (in,) root-mean-square of the layer's input features}`` over every token of ``texts``.

    Each text runs alone (no padding enters the statistics). ``names`` are ``<module>.weight`` parameter names
    of ``nn.Linear`` modules; other names raise InputError.
    """
    if not texts:
        raise InputError("Wanda needs calibration texts; pass at least one")
    modules = dict(model.named_modules())
    sums, counts, handles = {}, {}, []

    def hook(name):
        def record(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            sums[name] = sums.get(name, 0) + (x * x).sum(0).cpu()
            counts[name] = counts.get(name, 0) + x.shape[0]
        return record

    for name in names:
        module = modules.get(name.removesuffix(".weight"))
        if not isinstance(module, torch.nn.Linear):
            raise InputError(f"{name} is not the weight of an nn.Linear; Wanda scores need its input activations")
        handles.append(module.register_forward_pre_hook(hook(name)))
    try:
        model.eval()
        for text in texts:
            ids = tokenizer(text, return_tensors="pt").input_ids.to(device)
            model(input_ids=ids)
    finally:
        for handle in handles:
            handle.remove()
    return {name: (sums[name] / counts[name]).sqrt() for name in names}


def wanda_scores(weight: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """``|W| · norms`` broadcast over rows: ``(out, in)`` scores for an ``(out, in)`` weight and ``(in,)`` norms."""
    if weight.dim() != 2 or norms.shape != (weight.shape[1],):
        raise InputError(f"Wanda needs a 2-D (out, in) weight and an (in,) norms vector; got {tuple(weight.shape)} "
                         f"and {tuple(norms.shape)}")
    return weight.detach().abs().float() * norms.to(weight.device).float()[None, :]


def row_keep(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask pruning ``round(sparsity · in)`` lowest ``scores`` of every row (ties: lowest index kept)."""
    keep = scores.shape[1] - round(check_sparsity(sparsity) * scores.shape[1])
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    return torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order[:, :keep], True)


def wanda_masks(weights: dict[str, torch.Tensor], norms: dict[str, torch.Tensor], sparsity: float) -> dict:
    """Keep-masks ``{name: bool (out, in)}`` of Wanda at ``sparsity`` per output row."""
    return {name: row_keep(wanda_scores(w, norms[name]), sparsity) for name, w in weights.items()}
