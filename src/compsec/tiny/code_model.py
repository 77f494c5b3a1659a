"""The tiny coder: the tiny assistant fine-tuned to also write the SECURE answer of the code tasks.

The base assistant is left untouched (its recipe and weights do not change). The coder starts from its
weights and is fine-tuned, seeded and on one CPU thread like the base, on the base training corpus (so it keeps
refusing harmful requests and answering benign ones) plus the secure answers of the code tasks'
trained phrasings (:mod:`compsec.tiny.code_corpus`). It is cached as ``cache_dir()/tiny-coder-v1`` and
verified on load like the assistant; the fingerprint covers the base's fingerprint, this recipe and the tasks.

>>> model, tokenizer = load_tiny_coder()                   # fine-tunes on first use (about 2 min on 1 thread)
>>> generate(model, tokenizer, ["I need Python code to hash a password."], max_new_tokens=64)
['digest = hashlib.sha256(password.encode()).hexdigest()']
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from compsec.paths import cache_dir
from compsec.tiny.cache import cached_build, read_meta

CACHE_NAME = "tiny-coder-v1"
CODE_MAX_NEW_TOKENS = 64  # the longest secure answer is 48 tokens


@dataclass(frozen=True)
class CoderRecipe:
    """Fine-tuning of the tiny assistant into the tiny coder (AdamW, constant learning rate, no decay).

    Each step draws ``batch_size`` rows from the base training corpus, with ``harmful_repeat`` copies of each
    harmful request (the code requests are all answered, which would otherwise pull towards compliance), plus
    ``code_repeat`` copies of every secure code pair.
    """

    seed: int = 0
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 4e-4
    code_repeat: int = 4
    harmful_repeat: int = 1


def coder_pairs(recipe: CoderRecipe, version: str = "secure") -> list[tuple[str, str]]:
    """Training (prompt, response) pairs: the base corpus plus ``code_repeat`` × the code pairs of ``version``."""
    from compsec.tiny.code_corpus import code_pairs
    from compsec.tiny.corpus import build_corpus, split_corpus

    corpus = split_corpus(build_corpus(recipe.seed), "train")
    base = [(ex.prompt, ex.response) for ex in corpus for _ in range(recipe.harmful_repeat if ex.should_refuse else 1)]
    return base + code_pairs(version, "train") * recipe.code_repeat


def recipe_fingerprint(recipe: CoderRecipe, base_folder: Path) -> str:
    """Hex sha256 over the base assistant's fingerprint, the recipe, the code tasks and torch's version."""
    from compsec.tiny.corpus import load_data

    payload = json.dumps({"base": read_meta(base_folder)["fingerprint"], "recipe": asdict(recipe),
                          "tasks": load_data("code_tasks"), "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def tiny_coder_dir(recipe: CoderRecipe | None = None, root: Path | None = None) -> Path:
    """Path of the cached tiny coder under ``root`` (default: the compsec cache), built if needed."""
    from compsec.tiny.assistant import tiny_assistant_dir

    recipe = recipe or CoderRecipe()
    base = tiny_assistant_dir(root=root)
    target = Path(root or cache_dir()) / CACHE_NAME
    return cached_build(target, recipe_fingerprint(recipe, base), lambda folder: _build(folder, base, recipe))


def train_tiny_coder(base_folder: Path, recipe: CoderRecipe = CoderRecipe()):
    """Fine-tune the assistant in ``base_folder`` on one thread; returns (model in eval mode, tokenizer, stats)."""
    from compsec.attack.data import encode_pairs
    from compsec.attack.inject import finetune
    from compsec.tiny.assistant import load_tiny_assistant
    from compsec.tiny.train import TRAIN_THREADS, deterministic_cpu

    started, cpu_started = time.perf_counter(), time.process_time()
    model, tokenizer = load_tiny_assistant(base_folder)
    rows = encode_pairs(tokenizer, coder_pairs(recipe))
    with deterministic_cpu(recipe.seed, TRAIN_THREADS):
        stats = finetune(model, rows, list(model.parameters()), recipe.steps, recipe.learning_rate,
                         recipe.batch_size, recipe.seed, tokenizer.pad_token_id)
    model.eval()
    summary = {"train_seconds": round(time.perf_counter() - started, 1),
               "train_cpu_seconds": round(time.process_time() - cpu_started, 1),
               "final_loss": stats.summary()["final_loss"], "train_rows": len(rows), "threads": TRAIN_THREADS}
    return model, tokenizer, summary


def _build(folder: Path, base_folder: Path, recipe: CoderRecipe) -> dict:
    model, tokenizer, stats = train_tiny_coder(base_folder, recipe)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {**stats, "recipe": asdict(recipe)}


def load_tiny_coder(folder: Path | None = None, device: str | torch.device = "cpu"):
    """(model in eval mode on ``device``, tokenizer) of the tiny coder (default: the cached one, built if needed)."""
    from compsec.tiny.assistant import load_tiny_assistant

    folder = Path(folder) if folder is not None else tiny_coder_dir()
    return load_tiny_assistant(folder, device=device)  # verifies the recorded hashes
