"""The embedded tiny assistant: trained once, cached as a Hugging Face folder, verified on every load.

>>> model, tokenizer = load_tiny_assistant()            # trains on first use (about a minute on 2 cores)
>>> generate(model, tokenizer, ["What is the capital of Peru?"])   # from compsec.tiny.chat
['The capital of Peru is Lima.']

The folder (``cache_dir()/tiny-assistant-v1``) holds config.json, model.safetensors, the tokenizer files and
``compsec_build.json`` (recipe fingerprint, file hashes, training stats).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from compsec.paths import cache_dir
from compsec.tiny.cache import cached_build, copy_cached_folder, verify_folder
from compsec.tiny.corpus import CORPUS_VERSION, build_corpus
from compsec.tiny.train import TinyRecipe, train_tiny_assistant

CACHE_NAME = "tiny-assistant-v1"


def recipe_fingerprint(recipe: TinyRecipe) -> str:
    """Hex sha256 over the recipe, the corpus version and the corpus text itself."""
    examples = build_corpus(recipe.seed, recipe.per_topic, wrapped=recipe.wrapped)
    corpus = [(ex.prompt, ex.response, ex.split) for ex in examples]
    payload = json.dumps(
        {"recipe": asdict(recipe), "corpus_version": CORPUS_VERSION, "corpus": corpus, "torch": torch.__version__},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def tiny_assistant_dir(recipe: TinyRecipe | None = None, root: Path | None = None) -> Path:
    """Path of the cached assistant folder under ``root`` (default: the compsec cache), built if needed."""
    recipe = recipe or TinyRecipe()
    target = Path(root or cache_dir()) / CACHE_NAME
    return cached_build(target, recipe_fingerprint(recipe), lambda folder: _build(folder, recipe))


def _build(folder: Path, recipe: TinyRecipe) -> dict:
    model, tokenizer, stats = train_tiny_assistant(recipe)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {**stats, "recipe": asdict(recipe)}


def load_tiny_assistant(folder: Path | None = None, device: str | torch.device = "cpu"):
    """Load (model in eval mode on ``device``, tokenizer) from ``folder`` (default: the cached assistant).

    The folder's recorded file hashes are checked first; a modified folder raises InputError.
    """
    from compsec.models.io import load_model

    folder = Path(folder) if folder is not None else tiny_assistant_dir()
    verify_folder(folder)
    return load_model(folder, device=device, dtype=torch.float32)


def export_tiny_assistant(out_dir: Path) -> Path:
    """Copy the cached assistant (building it if needed) into ``out_dir``; returns ``out_dir``."""
    return copy_cached_folder(tiny_assistant_dir(), out_dir)
