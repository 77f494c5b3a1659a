"""Malformed copies of a model folder, one per input class every weight-reading verb must refuse (exit 2).

Each copy keeps the source's config.json and tokenizer and rewrites only ``model.safetensors`` (a valid file:
what is wrong is its tensors or their values, not the format):

- ``renamed``:  every tensor under another name (none of the config's tensors: transformers would load a model
  with every parameter freshly initialised);
- ``missing``:  one tensor of the config left out;
- ``extra``:    one tensor the config does not have;
- ``shape``:    one tensor with another shape;
- ``nan``:      two NaN values in one tensor;
- ``inf``:      one +Inf and one -Inf in one tensor.

``BadModel.tensors`` are names the error message must quote. Usable from any test folder::

    from inputs.corpus import build_bad_models     # tests/ is on sys.path (rootdir conftest)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
TARGET = "model.layers.0.mlp.up_proj.weight"  # the tensor each one-tensor class changes
EXTRA = "model.layers.0.mlp.backdoor.weight"


@dataclass(frozen=True)
class BadModel:
    """A malformed model folder: ``kind`` (input class), ``folder``, and ``tensors`` its error must name."""

    kind: str
    folder: Path
    tensors: tuple[str, ...]


def _renamed(tensors: dict) -> dict:
    return {f"stale.{name}": value for name, value in tensors.items()}


def _missing(tensors: dict) -> dict:
    return {name: value for name, value in tensors.items() if name != TARGET}


def _extra(tensors: dict) -> dict:
    return {**tensors, EXTRA: torch.zeros(4, 4)}


def _shape(tensors: dict) -> dict:
    return {**tensors, TARGET: tensors[TARGET][:-1].clone()}


def _with_values(values: tuple[float, ...]) -> Callable[[dict], dict]:
    def change(tensors: dict) -> dict:
        changed = tensors[TARGET].clone()
        changed.view(-1)[torch.arange(len(values)) * 7] = torch.tensor(values, dtype=changed.dtype)
        return {**tensors, TARGET: changed}

    return change


CLASSES: dict[str, tuple[Callable[[dict], dict], tuple[str, ...]]] = {
    "renamed": (_renamed, ("model.embed_tokens.weight", f"stale.{'model.embed_tokens.weight'}")),
    "missing": (_missing, (TARGET,)),
    "extra": (_extra, (EXTRA,)),
    "shape": (_shape, (TARGET,)),
    "nan": (_with_values((float("nan"), float("nan"))), (TARGET,)),
    "inf": (_with_values((float("inf"), float("-inf"))), (TARGET,)),
}


def build_bad_model(source: Path, folder: Path, kind: str) -> BadModel:
    """Copy model folder ``source`` to ``folder`` with its weights rewritten as input class ``kind``."""
    change, named = CLASSES[kind]
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns(WEIGHTS, "compsec_build.json"))
    save_file(change(load_file(str(Path(source) / WEIGHTS))), str(folder / WEIGHTS), metadata={"format": "pt"})
    return BadModel(kind, folder, named)


def build_bad_models(source: Path, root: Path) -> dict[str, BadModel]:
    """Every input class of :data:`CLASSES` built from ``source`` under ``root/<kind>``."""
    return {kind: build_bad_model(source, Path(root) / kind, kind) for kind in CLASSES}
