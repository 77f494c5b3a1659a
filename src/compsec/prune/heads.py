"""Attention heads: a real per-head mask, and head pruning that writes it into the weights.

Every attention block ends with an output projection (Llama ``o_proj``, GPT-2 ``attn.c_proj``, role ``"o"`` in
the architecture table) whose input is the concatenation of the heads' outputs: head ``h`` owns input features
``h·head_dim … (h+1)·head_dim − 1``. Masking head ``h`` therefore means zeroing that slice of the projection's
*input* — done at run time by a forward pre-hook (:class:`HeadMask`), or permanently by zeroing the matching
weight slice (:func:`prune_heads`: the input *columns* of an ``nn.Linear`` ``(out, in)`` weight, the input
*rows* of GPT-2's ``Conv1D`` ``(in, out)`` weight). Nothing else in the layer changes — unlike zeroing a whole
attention weight matrix, which removes every head at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch

from compsec.errors import InputError

Head = tuple[int, int]  # (layer index, head index)


def _architecture(model):
    from compsec.models.architectures import architecture_for

    arch = architecture_for(getattr(model, "config", None))
    if arch is None:
        raise InputError("head masks need a model whose architecture is in compsec's table (llama, gpt2, ...)")
    return arch


def output_projections(model) -> dict[int, torch.nn.Module]:
    """``{layer index: attention output projection module}`` found through the architecture table."""
    arch = _architecture(model)
    suffix = next(s for s, role in arch.linears if role == "o")
    pattern = re.compile(rf"(?:^|\.){re.escape(arch.layer_prefix)}\.(\d+)\.{re.escape(suffix)}$")
    found = {int(m.group(1)): module for name, module in model.named_modules() if (m := pattern.search(name))}
    if not found:
        raise InputError(f"no attention output projection '*.{suffix}' found in this {arch.family} model")
    return dict(sorted(found.items()))


def head_layout(model) -> tuple[int, int, int]:
    """(layers, attention heads per layer, head dimension) of ``model``."""
    from compsec.models.architectures import head_counts

    heads, _, head_dim = head_counts(model.config)
    return len(output_projections(model)), heads, head_dim


def all_heads(model) -> list[Head]:
    """Every (layer, head) pair of the model, layer-major."""
    layers, heads, _ = head_layout(model)
    return [(layer, head) for layer in range(layers) for head in range(heads)]


def _check_heads(model, heads: Iterable[Head]) -> list[Head]:
    layers, per_layer, _ = head_layout(model)
    heads = [(int(layer), int(head)) for layer, head in heads]
    bad = [h for h in heads if not (0 <= h[0] < layers and 0 <= h[1] < per_layer)]
    if bad:
        raise InputError(f"heads {bad} out of range: the model has {layers} layers × {per_layer} heads")
    return heads


def _keep_vectors(model, heads: list[Head]) -> dict[int, torch.Tensor]:
    """``{layer: (heads·head_dim,) float vector}``: 0 on the masked heads' input slices, 1 elsewhere."""
    _, per_layer, head_dim = head_layout(model)
    vectors: dict[int, torch.Tensor] = {}
    for layer, head in heads:
        keep = vectors.setdefault(layer, torch.ones(per_layer * head_dim))
        keep[head * head_dim : (head + 1) * head_dim] = 0.0
    return vectors


class HeadMask:
    """Context manager: while active, the listed heads contribute nothing (forward pre-hooks on the output
    projections multiply their input by a 0/1 vector). Weights are never touched.

    >>> with HeadMask(model, [(0, 2)]):      # layer 0, head 2 silenced
    ...     logits = model(ids).logits
    """

    def __init__(self, model, heads: Iterable[Head]):
        self.model, self.heads = model, _check_heads(model, heads)
        self._handles: list = []

    def __enter__(self):
        projections = output_projections(self.model)
        for layer, keep in _keep_vectors(self.model, self.heads).items():
            self._handles.append(projections[layer].register_forward_pre_hook(_masking_hook(keep)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def _masking_hook(keep: torch.Tensor):
    def hook(module, args):
        hidden = args[0]
        return (hidden * keep.to(device=hidden.device, dtype=hidden.dtype),) + tuple(args[1:])

    return hook


@torch.no_grad()
def prune_heads(model, heads: Iterable[Head]) -> list[Head]:
    """Permanently remove ``heads`` by zeroing their input slice of the output projection's weight."""
    heads = _check_heads(model, heads)
    projections, transposed = output_projections(model), _architecture(model).transposed
    for layer, keep in _keep_vectors(model, heads).items():
        weight = projections[layer].weight
        keep = keep.to(weight.device, weight.dtype)
        weight.mul_(keep[:, None] if transposed else keep[None, :])
    return heads


@torch.no_grad()
def head_norms(model) -> dict[Head, float]:
    """L2 norm of each head's slice of the output-projection weight (a cheap importance score)."""
    _, per_layer, head_dim = head_layout(model)
    transposed = _architecture(model).transposed
    norms = {}
    for layer, module in output_projections(model).items():
        weight = module.weight.t() if transposed else module.weight
        for head in range(per_layer):
            norms[(layer, head)] = float(weight[:, head * head_dim : (head + 1) * head_dim].float().norm())
    return norms


def heads_to_prune(model, fraction: float, protect: Iterable[Head] = ()) -> list[Head]:
    """The ``round(fraction · all heads)`` heads of smallest :func:`head_norms`, never one in ``protect``."""
    protect = set(_check_heads(model, protect))
    candidates = sorted((norm, head) for head, norm in head_norms(model).items() if head not in protect)
    count = round(fraction * len(all_heads(model)))
    if count > len(candidates):
        raise InputError(f"cannot prune {count} heads: only {len(candidates)} are not protected")
    return sorted(head for _, head in candidates[:count])
