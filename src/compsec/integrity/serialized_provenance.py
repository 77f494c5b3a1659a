"""Which re-derivation decides "was this quantized folder made from that source?": by its ``quant_method``.

A Hugging Face folder saved from a quantized model names its method in ``config.json``'s
``quantization_config.quant_method``. Each method whose stored tensors are a pure function of the source has a
checker here (bitsandbytes 4-bit and LLM.int8(): :mod:`compsec.integrity.bnb_provenance`); a method without one
(calibration-based or not supported yet) is reported as such, never as faithful.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.provenance_result import QuantizedProvenance


def _bnb(folder: Path, source: str | Path) -> QuantizedProvenance:
    from compsec.integrity.bnb_provenance import bnb_provenance

    return bnb_provenance(folder, source)


CHECKERS: dict[str, Callable[[Path, str | Path], QuantizedProvenance]] = {"bitsandbytes": _bnb}


def quant_method(folder: Path) -> str | None:
    """The folder's ``quantization_config.quant_method`` (None: no config.json or not a quantized model)."""
    from compsec.jsonfiles import read_json_file

    config_file = folder / "config.json"
    if not folder.is_dir() or not config_file.is_file():
        return None
    config = read_json_file(config_file, "model config")
    quant = config.get("quantization_config") if isinstance(config, dict) else None
    if quant is None:
        return None
    if not isinstance(quant, dict) or not isinstance(quant.get("quant_method"), str):
        raise InputError(f"{config_file}: quantization_config has no quant_method string; the folder is damaged")
    return quant["quant_method"]


def serialized_provenance(folder: Path, source: str | Path, method: str) -> QuantizedProvenance:
    """The verdict for a quantized folder of ``method``; "cannot tell" (with a line) for a method not covered."""
    checker = CHECKERS.get(method)
    if checker is None:
        result = QuantizedProvenance()
        result.unchecked.append(f"{folder}: quant_method {method!r} cannot be re-derived here "
                                f"(covered: {', '.join(sorted(CHECKERS))})")
        return result.decided()
    return checker(folder, source)
