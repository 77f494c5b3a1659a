"""``compsec quantize MODEL --format gptq-w4a16 --out DIR``: the llm-compressor folder, written for users.

The variant is built (or found) in the cache exactly as the audit builds it, then its files are copied into
the staged output folder: what llm-compressor saved, the tokenizer, the calibration texts and the provenance
record; ``AutoModelForCausalLM.from_pretrained(DIR)`` loads it wherever ``compressed-tensors`` is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from compsec.llmc.calibration import Calibration
from compsec.llmc.recipes import get_recipe

CACHE_ONLY = {"compsec_build.json"}


def export_variant(model: str | Path, name: str, calibration: Calibration, out: Path) -> dict:
    """Copy the (cached) variant folder of ``model`` into the empty folder ``out``; returns a summary."""
    from compsec.llmc.build import fit_to_shapes, variant_folder
    from compsec.llmc.variants import LlmcVariant

    recipe = get_recipe(name)
    if not Path(model).is_dir():
        LlmcVariant(recipe.name, recipe).folder(model)  # raises the folder-only InputError
    built = variant_folder(model, recipe, calibration)
    recipe = fit_to_shapes(model, recipe)  # as built: layers llm-compressor cannot group are in its ignore list
    for item in sorted(built.iterdir()):
        if item.is_file() and item.name not in CACHE_ONLY:
            shutil.copy2(item, Path(out) / item.name)
    return {"format": recipe.name, "recipe": recipe.modifiers,
            "calibration": None if not recipe.calibrated else
            {"source": calibration.source, "samples": calibration.samples, "max_length": calibration.max_length}}
