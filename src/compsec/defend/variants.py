"""Audit variants for the defences, registered on import with :func:`compsec.audit.variants.register_variant`.

- ``harden-auto``     calibrated noise (``--noise auto``, formats nf4,int8, seed 0) on the loaded model;
- ``noise-<sigma>``   fixed-sigma noise, e.g. ``noise-1e-3``;
- ``clip``            block-outlier clipping only (nf4 and int8 block layouts).

Each applies :func:`compsec.defend.harden.harden_model` to the audit's one loaded model in place and restores
the original weights (kept by the audit context) when the variant ends.  ``compsec audit`` sees them once
``compsec.defend.variants`` is imported (the ``harden`` verb module does so).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from compsec.defend.harden import HardenConfig, harden_model

FACTORY_NAME = "defend"


@dataclass(frozen=True)
class HardenVariant:
    """The original model hardened with ``config`` for the duration of the variant."""

    name: str
    config: HardenConfig

    @contextmanager
    def open(self, context):
        context.original_weights()  # snapshot before touching anything
        try:
            harden_model(context.model, self.config)
            yield context.local_backend()
        finally:
            context.restore_weights()


def defence_variant(spec: str) -> HardenVariant | None:
    """The variant for ``spec`` (see module docstring), or None when ``spec`` is not a defence."""
    key = spec.strip().lower()
    if key == "harden-auto":
        return HardenVariant(key, HardenConfig(noise="auto"))
    if key == "clip":
        return HardenVariant(key, HardenConfig(noise=0.0, clip_outliers=True))
    if key.startswith("noise-"):
        try:
            sigma = float(key.removeprefix("noise-"))
        except ValueError:
            return None
        return HardenVariant(key, HardenConfig(noise=sigma))
    return None


def register() -> None:
    """Register :func:`defence_variant` once (idempotent, so importing twice is harmless)."""
    from compsec.audit.variants import register_variant

    try:
        register_variant(FACTORY_NAME, defence_variant)
    except ValueError:
        pass  # already registered by an earlier import


register()
