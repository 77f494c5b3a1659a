"""Build a llm-compressor variant's compressed-tensors folder: once into the cache, or for the user.

The cache key is (source model content digest, recipe, calibration digest, llm-compressor version); the folder
holds what llm-compressor saved (``save_compressed=True``), the tokenizer, the exact calibration texts used
(``llmc_calibration.jsonl``, so the build can be re-run) and a compsec provenance record (operation
``llmc-oneshot``: the recipe, the calibration digest, sample count and token cap, the library versions).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from compsec.errors import InputError
from compsec.llmc.calibration import Calibration, write_calibration
from compsec.llmc.recipes import LlmcRecipe, shape_problems

LLMC_VERSION = "0.14.0.1"
OPERATION = "llmc-oneshot"
CALIBRATION_FILE = "llmc_calibration.jsonl"


def fit_to_shapes(model: str | Path, recipe: LlmcRecipe) -> LlmcRecipe:
    """The recipe as llm-compressor's users run it on ``model``.

    llm-compressor 0.14 refuses group quantization of a Linear whose input width the group size does not
    divide (compressed-tensors has no kernel for the ragged last group) and tells users to add those layers to
    the modifier's ``ignore`` list; that is done here, so they stay in the source precision and the ignore
    list is part of the recipe (cache key, provenance). SmolLM2 under groups of 128: q/k/v/o/gate/up
    (576 columns) stay bf16, only down_proj (1536) is quantized. InputError before any work when an N:M
    block does not divide a width, or when no weight would be compressed at all.
    """
    from compsec.llmc.recipes import ignore_patterns, indivisible_modules, with_ignored
    from compsec.models.linear import quantizable_weights

    shapes = {w.name: w.shape for w in quantizable_weights(Path(model)) if w.shape and not w.transposed}
    if recipe.nm is not None:
        problems = shape_problems(recipe, shapes)
        if problems:
            raise InputError(f"{recipe.name} cannot compress {model}: {len(problems)} weights do not fit "
                             f"({'; '.join(problems[:2])}); llm-compressor refuses them. Use an unstructured "
                             "variant (sparsegpt-50, wanda-50)")
        return recipe
    skipped = indivisible_modules(recipe, shapes)
    if skipped and len(skipped) == len(shapes):
        raise InputError(f"{recipe.name} cannot compress {model}: no weight's input width is a multiple of the "
                         f"group size {recipe.group_size}; use gptq-w4a16-g64 or a per-channel variant "
                         "(gptq-w8a16, w8a8-int8, fp8-dynamic)")
    modules = [name.removesuffix(".weight") for name in shapes]
    return with_ignored(recipe, ignore_patterns(skipped, modules))


def write_variant(model: str | Path, recipe: LlmcRecipe, calibration: Calibration, out: Path) -> dict:
    """Run llm-compressor into the empty folder ``out`` and record provenance; returns the build stats."""
    from compsec.integrity.provenance import record_provenance
    from compsec.llmc.side_env import run_worker

    recipe = fit_to_shapes(model, recipe)
    out = Path(out)
    calibration_file, digest = None, None
    if recipe.calibrated:
        calibration_file = out / CALIBRATION_FILE
        digest = write_calibration(calibration, calibration_file)
    answer = run_worker({"model": str(Path(model).resolve()), "out": str(out.resolve()),
                         "recipe": recipe.modifiers, "samples": calibration.samples,
                         "calibration": str(calibration_file) if calibration_file else None,
                         "max_length": calibration.max_length, "seed": 0})
    record_provenance(out, model, OPERATION, recipe_parameters(recipe, calibration, digest, answer), seed=0)
    return {"oneshot_seconds": round(answer["seconds"], 3), **answer}


def recipe_parameters(recipe: LlmcRecipe, calibration: Calibration, digest: str | None, answer: dict) -> dict:
    """What the provenance record says about the build (JSON)."""
    versions = {key: answer.get(key) for key in ("llmcompressor", "compressed_tensors", "transformers")}
    cal = None if digest is None else {"source": calibration.source, "samples": calibration.samples,
                                       "max_length": calibration.max_length, "sha256": digest}
    return {"variant": recipe.name, "recipe": recipe.modifiers, "calibration": cal, "versions": versions}


def variant_key(model: str | Path, recipe: LlmcRecipe, calibration: Calibration) -> str:
    """sha256 hex of (model content digest, recipe, calibration digest, llm-compressor version)."""
    import tempfile

    from compsec.integrity.manifest import content_digest, create_manifest

    with tempfile.TemporaryDirectory(prefix="compsec-calib-") as tmp:
        cal_digest = write_calibration(calibration, Path(tmp) / "c.jsonl") if recipe.calibrated else None
    key = {"model": content_digest(create_manifest(model)), "recipe": recipe.modifiers,
           "calibration": cal_digest, "llmcompressor": LLMC_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def variant_folder(model: str | Path, recipe: LlmcRecipe, calibration: Calibration) -> Path:
    """The cached folder of ``recipe`` applied to ``model`` with ``calibration`` (built on first use)."""
    from compsec.paths import cache_dir
    from compsec.tiny.cache import cached_build

    recipe = fit_to_shapes(model, recipe)
    fingerprint = variant_key(model, recipe, calibration)
    target = cache_dir() / "llmc" / f"{recipe.name.replace(':', '_')}-{fingerprint[:16]}"
    return cached_build(target, fingerprint, lambda folder: write_variant(model, recipe, calibration, folder))
