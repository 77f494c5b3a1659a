"""The registry of quantization formats: ``get(name)``, ``names()``, ``register(fmt)``.

Registration checks itself: the name is unique and lower-case, and the format implements the whole contract,
so the contract tests in ``tests/formats`` run over every registered format with no new test code.
"""

from __future__ import annotations

import re

from compsec.errors import InputError
from compsec.formats.base import Format

_FORMATS: dict[str, Format] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
_REQUIRED = ("quantize", "reference_quantize", "dequantize", "box_from_quantized", "preimage", "positions")


def register(fmt: Format) -> Format:
    """Add a configured format instance under ``fmt.name``; returns it so modules can keep a handle."""
    name = getattr(fmt, "name", None)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"format name {name!r} must be lower-case letters, digits, '_' or '-'")
    if name in _FORMATS:
        raise ValueError(f"format {name!r} is already registered (by {type(_FORMATS[name]).__name__})")
    missing = [m for m in _REQUIRED if not callable(getattr(fmt, m, None))]
    if missing:
        raise TypeError(f"format {name!r} lacks required methods: {', '.join(missing)}")
    _FORMATS[name] = fmt
    return fmt


def get(name: str) -> Format:
    """The registered format called ``name`` (case-insensitive); InputError listing the known names if absent."""
    key = name.strip().lower()
    if key not in _FORMATS:
        raise InputError(f"unknown format {name!r}; known formats: {', '.join(names())}")
    return _FORMATS[key]


def names() -> list[str]:
    """All registered format names, sorted."""
    return sorted(_FORMATS)


def parse_list(spec: str) -> list[Format]:
    """Formats from a comma-separated CLI value such as ``"nf4,int8,q4_0"``."""
    return [get(part) for part in spec.split(",") if part.strip()]
