"""The defence audit variants: resolved by name, change the loaded model's weights, restore them bit-exactly."""

from __future__ import annotations

import torch

import compsec.defend.variants  # noqa: F401  (registers the factory)
from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.variants import resolve_variant
from compsec.defend.variants import HardenVariant
from compsec.models.io import load_model


def test_defence_variants_resolve_apply_and_restore(micro_dir, tmp_path):
    model, tokenizer = load_model(micro_dir)
    context = AuditContext(AuditConfig(model=str(micro_dir), out=str(tmp_path)), model=model, tokenizer=tokenizer)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for spec in ("harden-auto", "noise-1e-3", "clip"):
        variant = resolve_variant(spec)
        assert isinstance(variant, HardenVariant) and variant.name == spec
        with variant.open(context) as backend:
            changed = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
            assert backend.model is model
            assert bool(changed) == (spec != "clip")        # a clean model has no block outlier to clip
        assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert resolve_variant("noise-2e-4").config.noise == 2e-4
