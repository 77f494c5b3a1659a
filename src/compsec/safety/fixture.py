"""The safety-tuned SmolLM2 fixture: built once from the cached SmolLM2 folder, cached, verified on every load.

>>> folder = safe_smollm_dir()     # first call: converts SmolLM2 if needed, then tunes (minutes on 2 cores)
>>> model, tokenizer = load_safe_smollm()

The folder (``cache_dir()/smollm2-135m-safety-v1``, ``$COMPSEC_CACHE`` moves it) is an ordinary Llama Hugging Face
folder (config.json, model.safetensors, tokenizer files) plus ``compsec_build.json``: the fingerprint of the recipe,
the training data and the base weights, the hash of every file, and the training stats (seconds, losses).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from compsec.paths import cache_dir
from compsec.safety import data
from compsec.safety.train import SafetyRecipe, safety_tune
from compsec.tiny.cache import cached_build, sha256_file, verify_folder

CACHE_NAME = "smollm2-135m-safety-v1"


def recipe_fingerprint(recipe: SafetyRecipe, base: Path) -> str:
    """Hex sha256 over the recipe, the training data, the base weights' bytes and the torch version."""
    payload = {"recipe": asdict(recipe), "harmful": data.HARMFUL, "lookalike": data.LOOKALIKE,
               "general": data.GENERAL, "framings": [data.HARMFUL_FRAMINGS, data.LOOKALIKE_FRAMINGS],
               "refusals": [data.REFUSAL_STYLES, data.REASONS], "torch": torch.__version__,
               "base": sha256_file(Path(base) / "model.safetensors")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def safe_smollm_dir(recipe: SafetyRecipe | None = None, base: Path | None = None, root: Path | None = None,
                    progress=None) -> Path:
    """Path of the cached safety-tuned folder under ``root`` (default: the compsec cache), built if needed.

    ``base`` is the untuned model folder (default: SmolLM2-135M-Instruct from the ``[smollm]`` extra).
    """
    from compsec.models.smollm import smollm_folder

    recipe = recipe or SafetyRecipe()
    base = Path(base) if base is not None else smollm_folder()
    name = CACHE_NAME if recipe == SafetyRecipe() else f"{CACHE_NAME}-{recipe_fingerprint(recipe, base)[:12]}"
    target = Path(root or cache_dir()) / name
    return cached_build(target, recipe_fingerprint(recipe, base), lambda folder: _build(folder, base, recipe, progress))


def _build(folder: Path, base: Path, recipe: SafetyRecipe, progress) -> dict:
    from compsec.models.io import load_model

    model, tokenizer = load_model(base, dtype=torch.float32)
    stats = safety_tune(model, tokenizer, recipe, progress=progress)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {**stats, "recipe": asdict(recipe), "base": str(base)}


def load_safe_smollm(folder: Path | None = None, device: str = "cpu"):
    """Load (model in eval mode, tokenizer) from ``folder`` (default: the cached fixture) after checking its hashes."""
    from compsec.models.io import load_model

    folder = Path(folder) if folder is not None else safe_smollm_dir()
    verify_folder(folder)
    return load_model(folder, device=device, dtype=torch.float32)
