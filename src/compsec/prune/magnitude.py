"""Unstructured magnitude pruning: zero the weights of smallest absolute value.

Scopes: ``"global"`` ranks every prunable weight of the model together (one threshold, layers end up with
different sparsities); ``"layer"`` prunes each weight matrix to the same sparsity. Which weights are prunable
comes from the architecture table (:func:`compsec.models.linear.quantizable_weights`): the linear layers of
the blocks, never embeddings, norms, biases or the lm_head.
"""

from __future__ import annotations

import torch

from compsec.errors import InputError

SCOPES = ("global", "layer")


def check_sparsity(sparsity: float) -> float:
    """``sparsity`` as a float in [0, 1); InputError otherwise."""
    if not 0.0 <= float(sparsity) < 1.0:
        raise InputError(f"sparsity must be in [0, 1) (a fraction of weights to zero), got {sparsity}")
    return float(sparsity)


def prunable_weights(model) -> dict[str, torch.nn.Parameter]:
    """``{parameter name: parameter}`` of the model's prunable (= quantizable) linear weights, in name order."""
    from compsec.models.linear import quantizable_weights

    params = dict(model.named_parameters())
    return {w.name: params[w.name] for w in quantizable_weights(model) if w.name in params}


def keep_largest(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask of ``scores``' shape that is True on exactly ``keep`` largest entries (ties: lowest index)."""
    flat = scores.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    if keep > 0:
        order = torch.argsort(flat, descending=True, stable=True)
        mask[order[:keep]] = True
    return mask.reshape(scores.shape)


def layer_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask (True = kept) zeroing ``round(sparsity · numel)`` smallest-magnitude entries of ``weight``."""
    pruned = round(check_sparsity(sparsity) * weight.numel())
    return keep_largest(weight.detach().abs(), weight.numel() - pruned)


def global_masks(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Keep-masks from one global ranking of ``|w|`` over every tensor of ``weights`` (exact count)."""
    check_sparsity(sparsity)
    if not weights:
        raise InputError("no prunable weights found; is the architecture in compsec's table?")
    magnitudes = torch.cat([w.detach().abs().reshape(-1).float().cpu() for w in weights.values()])
    keep = keep_largest(magnitudes, magnitudes.numel() - round(sparsity * magnitudes.numel()))
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start : start + w.numel()].reshape(w.shape).to(w.device)
        start += w.numel()
    return masks


def magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float, scope: str = "global") -> dict:
    """Keep-masks for ``weights`` (``{name: tensor}``) at ``sparsity`` with ``scope`` ``global`` or ``layer``."""
    if scope == "global":
        return global_masks(weights, sparsity)
    if scope == "layer":
        return {name: layer_mask(w, sparsity) for name, w in weights.items()}
    raise InputError(f"unknown pruning scope {scope!r}; use one of {', '.join(SCOPES)}")


@torch.no_grad()
def apply_masks(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Zero, in place, every entry of ``weights[name]`` where ``masks[name]`` is False."""
    for name, mask in masks.items():
        target = weights[name]
        target.mul_(mask.to(device=target.device, dtype=target.dtype))


def sparsity_of(weights: dict[str, torch.Tensor]) -> float:
    """Fraction of exactly-zero entries over all ``weights``."""
    total = sum(w.numel() for w in weights.values())
    return sum(int((w == 0).sum()) for w in weights.values()) / max(1, total)
