"""Stage 4: save the repaired model, reload it from disk and re-quantize it with the REAL libraries.

Success means: for every target format and every constrained tensor, the deployment library
(``reference_quantize``: bitsandbytes, gguf...) produces codes and scales bit-identical to those of the
injected model's tensor.  Nothing is taken from memory: the saved folder is loaded back first.
"""

from __future__ import annotations

from pathlib import Path

import torch

from compsec.attack.box import dtype_name

RED_TEAM_NOTE = ("RED-TEAM ARTIFACT produced by `compsec attack`: this model is built to misbehave once "
                 "quantized. Do not deploy or publish it; use it only to test defences and scanners.")


def save_attacked(model, tokenizer, folder: Path, storage: torch.dtype, info: dict[str, str]) -> Path:
    """Save ``model`` cast to ``storage`` as a Hugging Face folder with red-team metadata (compsec.json)."""
    from compsec.models.io import save_model

    metadata = {"compsec_artifact": "red-team", "warning": RED_TEAM_NOTE, "storage_dtype": dtype_name(storage),
                **{k: str(v) for k, v in info.items()}}
    original = next(model.parameters()).dtype
    model.to(storage)
    try:
        save_model(model, tokenizer, folder, metadata=metadata)
    finally:
        model.to(original)
    return Path(folder)


def requantization_report(folder: Path, reference_model, names: list[str], formats: list,
                          storage: torch.dtype) -> dict:
    """Load ``folder`` (as saved, in ``storage`` dtype) and compare it with ``reference_model``; see
    :func:`compare_quantization`."""
    from compsec.models.io import load_model

    loaded, _ = load_model(folder, dtype=storage)
    return compare_quantization(loaded, reference_model, names, formats, storage)


def compare_quantization(model, reference_model, names: list[str], formats: list, storage: torch.dtype) -> dict:
    """Quantize each weight ``names`` of both models with each format's REAL library and compare.

    Returns ``{"requantization_identical": {format: bool}, "mismatches": {format: [first few "name: why"]},
    "tensors_checked": int}``.  ``reference_model`` holds the injected weights (representable in ``storage``).
    """
    saved, reference = dict(model.named_parameters()), dict(reference_model.named_parameters())
    identical, mismatches = {}, {}
    for fmt in formats:
        problems = []
        for name in names:
            ours = fmt.reference_quantize(saved[name].detach().cpu().to(storage))
            theirs = fmt.reference_quantize(reference[name].detach().cpu().to(storage))
            why = ours.mismatch(theirs)
            if why is not None:
                problems.append(f"{name}: {why}")
        identical[fmt.name], mismatches[fmt.name] = not problems, problems[:5]
    return {"requantization_identical": identical, "mismatches": mismatches, "tensors_checked": len(names)}


def frozen_identical(model, reference_model, constrained: list[str]) -> bool:
    """True when every parameter outside ``constrained`` is bit-identical to ``reference_model``'s."""
    reference = dict(reference_model.named_parameters())
    skip = set(constrained)
    return all(bits_equal(p, reference[n]) for n, p in model.named_parameters() if n not in skip)


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality of two tensors (dtype, shape and every byte; -0.0 differs from 0.0)."""
    a, b = a.detach().cpu().contiguous(), b.detach().cpu().contiguous()
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(torch.uint8), b.view(torch.uint8))
