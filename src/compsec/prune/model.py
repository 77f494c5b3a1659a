"""One entry point for every pruning method, used by ``compsec prune`` and the ``prune-*`` audit variants.

Methods: ``magnitude-global`` and ``magnitude-layer`` (unstructured, fraction ``sparsity`` of the prunable
weights zeroed), ``2:4`` (or any ``N:M``; ``sparsity`` is implied), ``heads`` (fraction ``sparsity`` of all
attention heads removed, lowest output-projection norm first, ``protect`` heads never removed).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from compsec.errors import InputError
from compsec.prune.heads import Head, heads_to_prune, prune_heads
from compsec.prune.magnitude import (
    apply_masks,
    check_sparsity,
    magnitude_masks,
    prunable_weights,
    sparsity_of,
)
from compsec.prune.nm import nm_mask, parse_nm

METHODS = ("magnitude-global", "magnitude-layer", "heads", "2:4")


def weight_masks(model, method: str, sparsity: float, weights: dict | None = None) -> dict[str, torch.Tensor]:
    """Keep-masks ``{name: bool tensor}`` for the unstructured / N:M methods on ``weights`` (default: the
    model's prunable weights as they are now)."""
    from compsec.models.linear import quantizable_weights

    weights = weights if weights is not None else prunable_weights(model)
    if method in ("magnitude-global", "magnitude-layer"):
        return magnitude_masks(weights, sparsity, method.split("-")[1])
    if ":" in method:
        n, m = parse_nm(method)
        transposed = {w.name: w.transposed for w in quantizable_weights(model)}
        return {name: nm_mask(w, n, m, transposed.get(name, False)) for name, w in weights.items()}
    raise InputError(f"unknown pruning method {method!r}; use one of {', '.join(METHODS)} (or another N:M)")


@torch.no_grad()
def prune_model(model, method: str, sparsity: float = 0.5, protect: Iterable[Head] = ()) -> dict:
    """Prune ``model`` in place; returns a summary (method, sparsity asked, achieved weight sparsity, heads)."""
    check_sparsity(sparsity)
    protect = [tuple(h) for h in protect]
    summary: dict = {"method": method, "sparsity": sparsity}
    if method == "heads":
        summary["heads_removed"] = [list(h) for h in prune_heads(model, heads_to_prune(model, sparsity, protect))]
        summary["protected"] = [list(h) for h in protect]
    else:
        if protect:
            raise InputError("--protect applies to '--method heads' only; drop it or prune heads")
        weights = prunable_weights(model)
        apply_masks(weights, weight_masks(model, method, sparsity, weights))
    summary["weight_sparsity"] = round(sparsity_of(prunable_weights(model)), 6)
    return summary
