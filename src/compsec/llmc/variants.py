"""Audit variants built by llm-compressor: ``gptq-w4a16``, ``awq-w4a16``, ``fp8-dynamic``... (see
:mod:`compsec.llmc.recipes`). Importing this module registers the factory.

A variant is the compressed-tensors folder llm-compressor wrote for the audited model (built once, cached;
built-in calibration set, see :mod:`compsec.llmc.calibration`), loaded for its turn by compsec's one loader
(transformers with the ``compressed-tensors`` package: weights decompressed on the fly, activation quantization
of ``w8a8-int8`` / ``fp8-dynamic`` applied as compressed-tensors does on CPU), and freed after.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from compsec.llmc.calibration import Calibration
from compsec.llmc.recipes import RECIPES, LlmcRecipe

FACTORY_NAME = "llm-compressor"
DEFAULT_CALIBRATION = Calibration()  # the built-in set, 64 texts of at most 128 tokens


@dataclass(frozen=True)
class LlmcVariant:
    """The audited model compressed by llm-compressor with ``recipe`` and ``calibration``."""

    name: str
    recipe: LlmcRecipe
    calibration: Calibration = field(default_factory=Calibration)

    def folder(self, model: str | Path) -> Path:
        """The (cached) compressed-tensors folder for ``model``; builds it on first use."""
        from compsec.errors import InputError
        from compsec.llmc.build import variant_folder

        if not Path(model).is_dir():
            raise InputError(f"{self.name} needs the model as a Hugging Face folder (config.json + safetensors); "
                             f"{model} is not one")
        return variant_folder(model, self.recipe, self.calibration)

    @contextmanager
    def open(self, context):
        from compsec.audit.variants import FolderVariant

        with FolderVariant(str(self.folder(context.config.model))).open(context) as backend:
            yield backend


def llmc_variant(spec: str) -> LlmcVariant | None:
    """The variant for ``spec`` (a recipe name, case-insensitive), or None."""
    recipe = RECIPES.get(spec.strip().lower())
    return None if recipe is None else LlmcVariant(recipe.name, recipe, DEFAULT_CALIBRATION)


def register() -> None:
    """Register :func:`llmc_variant` once (importing twice is harmless)."""
    from compsec.audit.variants import register_variant

    try:
        register_variant(FACTORY_NAME, llmc_variant)
    except ValueError:
        pass  # already registered


register()
