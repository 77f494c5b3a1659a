"""``compsec quantize``: load a model, decide what to keep in full precision, write the bitsandbytes folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from compsec.defend.mixed import MixedPlan, choose_protected, plan_mixed_precision, write_mixed
from compsec.errors import InputError

PLAN_FILE = "mixed_precision.json"


@dataclass(frozen=True)
class QuantizeConfig:
    """``format``: nf4, fp4 or int8; ``protect``: ``"auto"`` (KL ranking within ``budget``, a fraction of the
    quantizable parameters), ``"none"``, or comma-separated weight names; ``texts``: size of the KL text set."""

    format: str = "nf4"
    protect: str = "auto"
    budget: float = 0.05
    texts: int = 24

    def __post_init__(self):
        from compsec.defend.mixed import BNB_FORMATS

        if self.format not in BNB_FORMATS:  # before any model is loaded
            raise InputError(f"mixed precision writes bitsandbytes folders: use --format {', '.join(BNB_FORMATS)}")


def _explicit_plan(model, config: QuantizeConfig) -> MixedPlan:
    from compsec.defend.harden import hardened_names

    names = hardened_names(model, [])
    wanted = [] if config.protect.strip().lower() == "none" else [
        n.strip() if n.strip().endswith(".weight") else n.strip() + ".weight"
        for n in config.protect.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise InputError(f"--protect names {unknown[0]!r}, not a quantizable weight; known e.g. {names[:3]}")
    params = dict(model.named_parameters())
    sizes = {n: params[n].numel() for n in names}
    fraction = sum(sizes[n] for n in wanted) / max(sum(sizes.values()), 1)
    return MixedPlan(config.format, tuple(wanted), config.budget, round(fraction, 6), {})


def make_plan(model, tokenizer, config: QuantizeConfig, device="cpu") -> MixedPlan:
    """The :class:`MixedPlan` for ``config`` (ranking only when ``protect == "auto"``)."""
    if config.protect.strip().lower() == "auto":
        return plan_mixed_precision(model, tokenizer, config.format, config.budget, config.texts, device)
    return _explicit_plan(model, config)


def quantize_folder(source, out_dir, config: QuantizeConfig, device="cpu") -> MixedPlan:
    """Load ``source``, plan, write the bitsandbytes folder to ``out_dir`` with the plan and provenance."""
    from compsec.integrity.provenance import record_provenance
    from compsec.models.io import load_model

    model, tokenizer = load_model(source, device=device)
    plan = make_plan(model.float(), tokenizer, config, device)
    write_mixed(model.cpu(), tokenizer, plan, out_dir)
    (Path(out_dir) / PLAN_FILE).write_text(json.dumps(plan.to_json(), indent=1) + "\n", encoding="utf-8")
    params = {k: v for k, v in plan.to_json().items() if k != "sensitivity"}
    record_provenance(out_dir, source, "quantize-mixed", {**params, "protect": config.protect}, seed=None)
    return plan


__all__ = ["QuantizeConfig", "choose_protected", "make_plan", "quantize_folder"]
