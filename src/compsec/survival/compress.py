"""The compressions a backdoor is put through, applied to a copy of a model's linear weights.

Names: ``original``; any registered format (``int8 nf4 fp4 q4_0``...: every weight replaced by
``dequantize(quantize(w))`` — simulated, as the audit variants do); ``prune-<percent>`` (global magnitude);
``2:4``. The distilled student and fine-pruning need training data, so :mod:`compsec.survival.table` builds
them per fixture.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from compsec.errors import InputError

WEIGHT_COMPRESSIONS = ("original", "int8", "nf4", "fp4", "q4_0", "prune-30", "prune-50", "prune-70", "2:4")
_PRUNE = re.compile(r"^prune-(\d{1,2})$")


def linear_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights to compress: the architecture table's for a transformers model, every ``nn.Linear``'s
    weight for a plain torch module (the digits MLP)."""
    if getattr(model, "config", None) is not None:
        from compsec.prune.magnitude import prunable_weights

        return prunable_weights(model)
    return {f"{name}.weight": m.weight for name, m in model.named_modules() if isinstance(m, nn.Linear)}


@torch.no_grad()
def quantize_in_place(weights: dict[str, torch.Tensor], format_name: str) -> list[str]:
    """Round-trip every supported tensor through the format; returns the names left unquantized."""
    from compsec import formats

    fmt, skipped = formats.get(format_name), []
    for name, w in weights.items():
        if fmt.supports(tuple(w.shape)):
            w.copy_(fmt.dequantize(fmt.quantize(w.detach().float())).to(w.dtype))
        else:
            skipped.append(name)
    return skipped


def check_compression(compression: str) -> str:
    """``compression`` when :func:`compressed_copy` knows it; InputError otherwise (checked before any load)."""
    from compsec import formats

    if compression in ("original", "2:4") or compression in formats.names() or _PRUNE.match(compression):
        return compression
    raise InputError(f"unknown compression {compression!r}; use {', '.join(WEIGHT_COMPRESSIONS)} or a format")


def compressed_copy(model: nn.Module, compression: str) -> tuple[nn.Module, dict]:
    """(a compressed deep copy of ``model``, notes) for one of the weight compressions named above."""
    from compsec import formats
    from compsec.prune.magnitude import apply_masks, global_masks, sparsity_of
    from compsec.prune.nm import nm_mask

    copy_ = copy.deepcopy(model)
    weights, notes = linear_weights(copy_), {}
    if compression == "original":
        pass
    elif compression in formats.names():
        notes["unquantized"] = quantize_in_place(weights, compression)
    elif match := _PRUNE.match(compression):
        apply_masks(weights, global_masks(weights, int(match.group(1)) / 100))
    elif compression == "2:4":
        apply_masks(weights, {name: nm_mask(w, 2, 4) for name, w in weights.items()})
    else:
        check_compression(compression)
    if compression != "original":
        notes["weight_sparsity"] = round(sparsity_of(weights), 4)
    return copy_.eval(), notes
