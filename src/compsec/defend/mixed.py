"""Safety-aware mixed precision: keep the most behaviour-sensitive tensors unquantized, quantize the rest.

Ranking: :func:`compsec.defend.sensitivity.tensor_sensitivity`, i.e. ``KL(original || only that tensor
quantized)`` on generic text.  Selection (:func:`choose_protected`): tensors in decreasing KL, each kept when it
still fits the budget (a fraction of the quantizable parameters), skipped otherwise.

Output: a folder that ``AutoModelForCausalLM.from_pretrained(DIR)`` loads on CPU with real bitsandbytes
modules: ``config.json`` carries a ``BitsAndBytesConfig`` whose ``llm_int8_skip_modules`` lists ``lm_head`` and
the kept modules (plain ``nn.Linear``); every other quantizable linear is a ``Linear4bit`` (``nf4``/``fp4``,
blocksize 64) or ``Linear8bitLt`` (``int8``) holding the library's own serialized codes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError, MissingDependencyError

BNB_FORMATS = ("nf4", "fp4", "int8")
ALWAYS_SKIPPED = ("lm_head",)


@dataclass(frozen=True)
class MixedPlan:
    """What :func:`plan_mixed_precision` decided: format, kept (unquantized) weight names, the budget
    (fraction of quantizable parameters) and the fraction actually kept, and the per-tensor KL ranking."""

    format: str
    protected: tuple[str, ...]
    budget: float
    kept_fraction: float
    sensitivity: dict[str, float]

    @property
    def skip_modules(self) -> list[str]:
        """Module names for ``llm_int8_skip_modules`` (weight names without ``.weight``)."""
        return list(ALWAYS_SKIPPED) + [n.removesuffix(".weight") for n in self.protected]

    def to_json(self) -> dict:
        return {"format": self.format, "protected": list(self.protected), "budget": self.budget,
                "kept_fraction": self.kept_fraction, "skip_modules": self.skip_modules,
                "sensitivity": self.sensitivity}


def parse_budget(spec: str | float) -> float:
    """A fraction in [0, 1) from ``"5%"``, ``"0.05"`` or ``0.05``."""
    text = str(spec).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise InputError(f"--budget {spec!r} is not a fraction; use e.g. 5% or 0.05") from None
    if not 0 <= value < 1:
        raise InputError(f"--budget {spec!r} must be between 0% and 100% (exclusive)")
    return value


def choose_protected(sensitivity: dict[str, float], sizes: dict[str, int], budget: float) -> list[str]:
    """Names to keep: decreasing sensitivity, each taken when the kept parameters stay within ``budget`` of
    ``sum(sizes)``."""
    allowed, used, kept = budget * sum(sizes.values()), 0, []
    for name in sorted(sensitivity, key=lambda n: (-sensitivity[n], n)):
        if used + sizes[name] <= allowed:
            kept.append(name)
            used += sizes[name]
    return kept


def plan_mixed_precision(model, tokenizer, format_name: str, budget: float, texts: int = 24,
                         device="cpu") -> MixedPlan:
    """Rank ``model``'s quantizable weights by KL sensitivity under ``format_name`` and pick the kept ones."""
    from compsec import formats
    from compsec.defend.harden import hardened_names
    from compsec.defend.sensitivity import encode_texts, generic_texts, tensor_sensitivity

    fmt = formats.get(format_name)
    names = hardened_names(model, [fmt])
    batch = encode_texts(tokenizer, generic_texts(tokenizer, texts), device=device)
    sensitivity = tensor_sensitivity(model, batch, fmt, names)
    params = dict(model.named_parameters())
    sizes = {n: params[n].numel() for n in names}
    kept = choose_protected(sensitivity, sizes, budget)
    fraction = sum(sizes[n] for n in kept) / max(sum(sizes.values()), 1)
    return MixedPlan(fmt.name, tuple(kept), budget, round(fraction, 6),
                     {n: round(v, 8) for n, v in sensitivity.items()})


def bnb_config(format_name: str, skip_modules: list[str]):
    """The ``BitsAndBytesConfig`` that stores ``format_name`` and leaves ``skip_modules`` as ``nn.Linear``."""
    import torch

    try:
        from transformers import BitsAndBytesConfig
    except ImportError as err:
        raise MissingDependencyError("transformers", purpose="writing a bitsandbytes model folder") from err
    if format_name not in BNB_FORMATS:
        raise InputError(f"mixed precision writes bitsandbytes folders: use --format {', '.join(BNB_FORMATS)}")
    if format_name == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip_modules)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=format_name,
                              bnb_4bit_compute_dtype=torch.float32, llm_int8_skip_modules=skip_modules)


def write_mixed(model, tokenizer, plan: MixedPlan, out_dir) -> Path:
    """Save ``model`` quantized per ``plan`` by transformers + bitsandbytes into ``out_dir`` (see module doc)."""
    import bitsandbytes  # noqa: F401  (fail early with the pip line rather than inside transformers)
    from transformers import AutoModelForCausalLM

    from compsec.models.io import save_model
    from compsec.models.weights_check import offline_load_options

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="compsec-mixed-") as tmp:
        save_model(model, None, tmp)
        quantized = AutoModelForCausalLM.from_pretrained(
            tmp, quantization_config=bnb_config(plan.format, plan.skip_modules), device_map="cpu",
            **offline_load_options())
        out_dir.mkdir(parents=True, exist_ok=True)
        quantized.save_pretrained(str(out_dir))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out_dir))
    return out_dir
