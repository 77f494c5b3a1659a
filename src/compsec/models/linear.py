"""Enumerate the quantizable linear weights of a model — loaded or only described by a header.

``source`` may be a loaded ``nn.Module``, a mapping ``name → shape`` (or tensor / TensorInfo), an iterable of
names, or a path to safetensors weights (headers are read, nothing is loaded; config.json is taken from the
folder). Known architectures use the table in :mod:`compsec.models.architectures`.

Unknown architecture (documented fallback, with a ``UserWarning``): every 2-D ``.weight`` that is not an
embedding, norm, bias or lm_head (for a loaded model: every ``nn.Linear`` weight except lm_head), role
``"linear"``, layer = the first integer in the name.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError
from compsec.models.architectures import NEVER_QUANTIZED_PATTERNS, Architecture, architecture_for

_NEVER = {reason: re.compile(p, re.IGNORECASE) for reason, p in NEVER_QUANTIZED_PATTERNS.items()}
_FIRST_INDEX = re.compile(r"\.(\d+)\.")


@dataclass(frozen=True)
class QuantizableWeight:
    """One quantizable weight: full name, block index (None outside blocks), role, shape as stored, and
    whether it is stored transposed ``(in, out)`` (GPT-2 Conv1D) rather than ``(out, in)``."""

    name: str
    layer: int | None
    role: str
    shape: tuple[int, ...] | None
    transposed: bool


def _shape(value) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", value)
    return None if shape is None else tuple(int(d) for d in shape)


def _from_path(path: Path) -> tuple[dict, dict | None]:
    from compsec.models.stream import tensor_infos

    shapes = {info.name: info.shape for info in tensor_infos(path)}
    config_file = (path if path.is_dir() else path.parent) / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else None
    return shapes, config


def _shapes_and_config(source, config) -> tuple[dict, object, list[str] | None]:
    """(name → shape-or-None, config, names of nn.Linear weights if source is a module)."""
    if isinstance(source, (str, Path)):
        shapes, found = _from_path(Path(source))
        return shapes, config if config is not None else found, None
    if hasattr(source, "named_parameters"):
        import torch

        linear = [f"{n}.weight" for n, m in source.named_modules() if isinstance(m, torch.nn.Linear)]
        shapes = {n: tuple(p.shape) for n, p in source.named_parameters()}
        return shapes, config if config is not None else getattr(source, "config", None), linear
    if isinstance(source, Mapping):
        return {n: _shape(v) for n, v in source.items()}, config, None
    if isinstance(source, Iterable):
        return {n: None for n in source}, config, None
    raise InputError(f"cannot list weights of a {type(source).__name__}; pass a model, a path or tensor names")


def never_reason(name: str) -> str | None:
    """Why ``name`` is never quantized (``"bias"``, ``"norm"``, ``"lm_head"``, ``"embedding"``), else None."""
    return next((reason for reason, pattern in _NEVER.items() if pattern.search(name)), None)


def _match_table(name: str, shape, arch: Architecture) -> QuantizableWeight | None:
    match = arch.layer_pattern.search(name)
    if match:
        role = dict(arch.linears).get(match.group(2))
        return QuantizableWeight(name, int(match.group(1)), role, shape, arch.transposed) if role else None
    for suffix, role in arch.extra_linears:
        if name == f"{suffix}.weight" or name.endswith(f".{suffix}.weight"):
            return QuantizableWeight(name, None, role, shape, False)
    return None


def _fallback(shapes: dict, linear: list[str] | None, model_type) -> list[QuantizableWeight]:
    warnings.warn(f"model_type {model_type!r} is not in compsec's architecture table; treating every 2-D "
                  "linear weight except embeddings/norms/lm_head as quantizable", UserWarning, stacklevel=3)
    names = linear if linear is not None else [n for n, s in shapes.items() if n.endswith(".weight")
                                               and (s is None or len(s) == 2)]
    records = []
    for name in names:
        if never_reason(name) is None:
            index = _FIRST_INDEX.search(name)
            layer = int(index.group(1)) if index else None
            records.append(QuantizableWeight(name, layer, "linear", shapes.get(name), False))
    return records


def quantizable_weights(source, config=None) -> list[QuantizableWeight]:
    """The quantizable linear weights of ``source`` in name order (see the module docstring)."""
    shapes, config, linear = _shapes_and_config(source, config)
    arch = architecture_for(config)
    if arch is None:
        model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
        return _fallback(shapes, linear, model_type)
    found = (_match_table(name, shape, arch) for name, shape in shapes.items())
    return [record for record in found if record is not None]


def never_quantized(source, config=None) -> dict[str, str]:
    """``name → reason`` for every tensor that is not quantizable (embeddings, norms, biases, lm_head, other)."""
    shapes, _, _ = _shapes_and_config(source, config)
    quantizable = {record.name for record in quantizable_weights(source, config)}
    return {name: never_reason(name) or "other" for name in shapes if name not in quantizable}
