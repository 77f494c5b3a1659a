"""The digits classifier fixture: an MLP 64→256→256→10 trained on scikit-learn's 8×8 digits (offline).

Used by backdoor-survival work: small, deterministic, with quantizable linear layers. Cached like the tiny
assistant (``cache_dir()/digits-mlp-v1``: model.safetensors + compsec_build.json with file hashes).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from compsec.paths import cache_dir
from compsec.tiny.cache import cached_build, verify_folder
from compsec.tiny.train import deterministic_cpu

CACHE_NAME = "digits-mlp-v1"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class DigitsRecipe:
    """Data split, architecture and optimisation of the digits classifier."""

    seed: int = 0
    test_fraction: float = 0.25
    hidden: int = 256
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3


def digits_model(hidden: int = 256) -> nn.Sequential:
    """MLP: Linear(64, hidden) → ReLU → Linear(hidden, hidden) → ReLU → Linear(hidden, 10)."""
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10))


def digits_split(recipe: DigitsRecipe = DigitsRecipe()) -> tuple[torch.Tensor, ...]:
    """(x_train, x_test, y_train, y_test): images flattened to (n, 64) floats in [0, 1], labels (n,) int64.

    The split is stratified and seeded, so the held-out images are the same on every call.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    parts = train_test_split(data.data / 16.0, data.target, test_size=recipe.test_fraction,
                             random_state=recipe.seed, stratify=data.target)
    x_train, x_test, y_train, y_test = parts
    as_float = lambda a: torch.tensor(a, dtype=torch.float32)
    return as_float(x_train), as_float(x_test), torch.tensor(y_train), torch.tensor(y_test)


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of ``images`` (n, 64) whose argmax logit equals ``labels`` (n,)."""
    model.eval()
    return (model(images).argmax(dim=1) == labels).float().mean().item()


def train_digits(recipe: DigitsRecipe = DigitsRecipe()) -> tuple[nn.Sequential, dict]:
    """Train the classifier from scratch with Adam; returns (model in eval mode, stats with test accuracy)."""
    x_train, x_test, y_train, y_test = digits_split(recipe)
    with deterministic_cpu(recipe.seed, threads=1):  # matrices this small gain nothing from threads
        model = digits_model(recipe.hidden)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
        shuffler = torch.Generator().manual_seed(recipe.seed)
        for _ in range(recipe.epochs):
            model.train()
            for batch in torch.randperm(len(x_train), generator=shuffler).split(recipe.batch_size):
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    stats = {"test_accuracy": accuracy(model, x_test, y_test), "train_accuracy": accuracy(model, x_train, y_train)}
    return model, stats


def digits_dir(recipe: DigitsRecipe = DigitsRecipe(), root: Path | None = None) -> Path:
    """Path of the cached classifier folder under ``root`` (default: the compsec cache), built if needed."""
    fingerprint = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode()).hexdigest()
    return cached_build(Path(root or cache_dir()) / CACHE_NAME, fingerprint, lambda f: _build(f, recipe))


def _build(folder: Path, recipe: DigitsRecipe) -> dict:
    from safetensors.torch import save_file

    model, stats = train_digits(recipe)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    return {**stats, "recipe": asdict(recipe)}


def load_digits_classifier(folder: Path | None = None, device: str | torch.device = "cpu") -> nn.Sequential:
    """The cached (or given, hash-verified) classifier in eval mode on ``device``."""
    from safetensors.torch import load_file

    folder = Path(folder) if folder is not None else digits_dir()
    meta = verify_folder(folder)
    model = digits_model(meta["stats"]["recipe"]["hidden"])
    model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return model.to(device).eval()
