"""Was this compressed-tensors folder (GPTQ / AWQ / FP8 ... by llm-compressor) made from that source?

Two checks, per tensor:

1. **Scales** (no calibration needed). llm-compressor's min-max weight observer sets every group's scale from
   the *source* weights before GPTQ moves any of them: for symmetric int-b, ``scale = max(max(w, 0),
   -min(w, 0)) / ((qmax - qmin) / 2)`` over the group (``/ 7.5`` for int4, ``/ 127.5`` for int8), bit-exact in
   float32. A recomputed scale that differs names the tensor and its groups. Recipes that rescale weights
   before the observer (SmoothQuant, AWQ: read from the folder's ``recipe.yaml`` or the provenance record) and
   asymmetric / float schemes are not scale-checked.
2. **Re-run** (exact). When the folder carries compsec's provenance record (operation ``llmc-oneshot``) and the
   calibration texts it was built with (``llmc_calibration.jsonl``, digest checked against the record), the
   recipe is re-run on the source in the side environment and every tensor compared byte for byte. GPTQ's codes
   depend on the calibration data, so without it no code is re-derived.

Verdict: ``not derived`` when a scale or a re-run tensor differs (named); ``faithful`` when the re-run matches
every tensor; otherwise ``cannot tell (calibration-dependent)``, with the largest deviations |w - w_q| / scale
per tensor as evidence (GPTQ moves weights by up to ~3 steps when compensating errors, so large deviations are
reported, not judged).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from compsec.errors import InputError

SMOOTHING = ("SmoothQuantModifier", "AWQModifier")
CANNOT_TELL = "cannot tell (calibration-dependent)"


@dataclass
class CtProvenance:
    """``verdict``, one line per differing tensor, notes, and how many tensors each check covered."""

    verdict: str = CANNOT_TELL
    differs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scale_checked: int = 0
    rerun_checked: int = 0


def is_compressed_tensors(folder: str | Path) -> bool:
    """True for a folder whose config.json says ``quant_method: compressed-tensors``."""
    config = Path(folder) / "config.json"
    if not Path(folder).is_dir() or not config.is_file():
        return False
    quant = json.loads(config.read_text(encoding="utf-8")).get("quantization_config") or {}
    return quant.get("quant_method") == "compressed-tensors"


def symmetric_scales(weight: torch.Tensor, num_bits: int, group_size: int | None) -> torch.Tensor:
    """compressed-tensors' min-max symmetric scale per row (``group_size`` None) or per row and group."""
    groups = weight.reshape(weight.shape[0], -1, group_size or weight.shape[1]).to(torch.float32)
    top, bottom = groups.amax(-1).clamp(min=0), groups.amin(-1).clamp(max=0)
    return torch.maximum(top.abs(), bottom.abs()) / (((1 << num_bits) - 1) / 2)


def scale_problems(decoded, source: dict[str, torch.Tensor], args: dict) -> tuple[list[str], int]:
    """One line per tensor whose stored scales differ from the source's; and how many tensors were checked."""
    lines, checked = [], 0
    for name, item in decoded.items():
        if item.codes is None:
            continue
        if name not in source or tuple(source[name].shape) != tuple(item.weight.shape):
            lines.append(f"{name}: missing from the source or of another shape")
            continue
        expected = symmetric_scales(source[name], int(args["num_bits"]), item.group_size)
        stored = item.scale.to(torch.float32).reshape(expected.shape)
        wrong = (expected != stored).nonzero()
        checked += 1
        if len(wrong):
            row, group = (int(v) for v in wrong[0])
            lines.append(f"{name}: {len(wrong)} of {stored.numel()} scales differ from the source's min-max "
                         f"scales (first: row {row}, group {group}); the source was not this folder's input")
    return lines, checked


def deviation_notes(decoded, source: dict[str, torch.Tensor], top: int = 3) -> list[str]:
    """The ``top`` tensors with the largest |w_source - w_quantized| in units of their group's scale."""
    steps = {}
    for name, item in decoded.items():
        if item.codes is not None and name in source and source[name].shape == item.weight.shape:
            repeat = item.weight.shape[1] // item.scale.shape[1]
            scale = item.scale.repeat_interleave(repeat, dim=1).clamp(min=torch.finfo(torch.float32).tiny)
            steps[name] = float(((source[name].float() - item.weight) / scale).abs().max())
    worst = sorted(steps.items(), key=lambda kv: -kv[1])[:top]
    return [f"largest deviation {value:.2f} steps in {name}" for name, value in worst]


def ct_provenance(folder: str | Path, source: str | Path) -> CtProvenance:
    """Run both checks of the module docstring on ``folder`` against the ``source`` model folder."""
    from safetensors.torch import load_file

    from compsec.integrity.path_policy import checked_input
    from compsec.integrity.provenance import artifact_tensor_digests
    from compsec.integrity.provenance_verify import compare_digests
    from compsec.llmc.ct_decode import decode_folder, weights_args
    from compsec.llmc.rerun import rerun_digests

    folder, source = checked_input(folder, "model folder"), checked_input(source, "source model folder")
    if not is_compressed_tensors(folder):
        raise InputError(f"{folder}: not a compressed-tensors folder (config.json quantization_config)")
    result, config = CtProvenance(), json.loads((folder / "config.json").read_text(encoding="utf-8"))
    decoded, args = decode_folder(folder), weights_args(config)
    source_tensors = {k: v for f in sorted(source.glob("*.safetensors")) for k, v in load_file(f).items()}
    if _scales_checkable(folder, args):
        result.differs, result.scale_checked = scale_problems(decoded, source_tensors, args)
    else:
        result.notes.append("scales not checked (smoothing recipe, or not a symmetric int scheme)")
    rerun = rerun_digests(folder, source)
    if isinstance(rerun, str):
        result.notes.append(f"not re-run: {rerun}")
    else:
        result.differs += compare_digests(artifact_tensor_digests(folder), rerun, "re-run on the source")
        result.rerun_checked = len(rerun)
    result.notes += deviation_notes(decoded, source_tensors)
    result.verdict = "not derived" if result.differs else "faithful" if result.rerun_checked else CANNOT_TELL
    return result


def _scales_checkable(folder: Path, args: dict) -> bool:
    recipe = folder / "recipe.yaml"
    smoothed = recipe.is_file() and any(name in recipe.read_text(encoding="utf-8") for name in SMOOTHING)
    return (args.get("type") == "int" and args.get("symmetric", True) and not args.get("dynamic")
            and args.get("strategy") in ("group", "channel") and not smoothed)
