"""Audit variants for pruning: ``prune-30`` / ``prune-50`` / ``prune-70`` (any ``prune-<percent>``, global
magnitude), ``prune-layer-<percent>`` (per-layer magnitude) and ``prune-2:4`` (any ``prune-N:M``).

Like the format variants, the *one* loaded model is pruned in place from its saved original weights and
restored bit-exactly when the variant ends. Importing this module registers the factory (the CLI imports it).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

from compsec.audit.variants import register_variant

_SPEC = re.compile(r"^prune-(?:(layer)-)?(?:(\d{1,2})|(\d+:\d+))$")


@dataclass(frozen=True)
class PruneVariant:
    """The original model with its prunable weights pruned by ``method`` at ``sparsity``."""

    name: str
    method: str
    sparsity: float

    @contextmanager
    def open(self, context):
        from compsec.prune.magnitude import apply_masks
        from compsec.prune.model import weight_masks

        params = dict(context.model.named_parameters())
        originals = context.original_weights()
        try:
            masks = weight_masks(context.model, self.method, self.sparsity, originals)
            apply_masks({name: params[name] for name in masks}, masks)
            yield context.local_backend()
        finally:
            context.restore_weights()


def prune_variant(spec: str) -> PruneVariant | None:
    """The variant for ``spec`` (see the module docstring), or None if it is not a pruning spec."""
    match = _SPEC.match(spec.strip().lower())
    if match is None:
        return None
    layer, percent, pattern = match.groups()
    if pattern:
        return None if layer else PruneVariant(spec, pattern, 0.5)
    return PruneVariant(spec, "magnitude-layer" if layer else "magnitude-global", int(percent) / 100)


register_variant("prune", prune_variant)
