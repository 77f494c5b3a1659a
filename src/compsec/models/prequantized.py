"""Folders that were quantized before compsec saw them: which method, and can it run here.

transformers picks a quantizer from ``config.json``'s ``quantization_config.quant_method`` and needs that
method's package (and kernels). This table says, per method, the package transformers imports and whether that
package runs the layers on CPU. compsec's loader asks :func:`require_runnable` first, so a folder whose kernels
have no CPU path (or whose package is missing) is refused with what to do, instead of transformers' traceback.
A pre-quantized folder is an audit variant like any model folder: ``--variants path/to/gptq-folder``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError, MissingDependencyError


@dataclass(frozen=True)
class QuantMethod:
    """``module``: what transformers imports; ``pip``: how to get it; ``cpu``: its layers run on CPU."""

    module: str
    pip: str
    cpu: bool


METHODS = {
    "compressed-tensors": QuantMethod("compressed_tensors", "compressed-tensors==0.19.0", True),
    "bitsandbytes": QuantMethod("bitsandbytes", "bitsandbytes", True),
    "hqq": QuantMethod("hqq", "hqq", True),
    "gptq": QuantMethod("gptqmodel", "gptqmodel", True),  # gptqmodel's torch kernel runs on CPU
    "awq": QuantMethod("gptqmodel", "gptqmodel", True),  # transformers 5 runs AWQ through gptqmodel
    "fbgemm_fp8": QuantMethod("fbgemm_gpu", "fbgemm-gpu", False),
    "eetq": QuantMethod("eetq", "eetq", False),
    "exl2": QuantMethod("exllamav2", "exllamav2", False),
    "vptq": QuantMethod("vptq", "vptq", False),
}


def quant_method(folder: str | Path) -> str | None:
    """``quantization_config.quant_method`` of the folder's config.json (lower case), or None."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return None
    quant = json.loads(config.read_text(encoding="utf-8")).get("quantization_config")
    return str(quant.get("quant_method", "unknown")).lower() if isinstance(quant, dict) else None


def require_runnable(folder: str | Path) -> str | None:
    """The folder's quantization method if it can run on this machine's CPU; raises saying why not."""
    from importlib.util import find_spec

    method = quant_method(folder)
    if method is None:
        return None
    known = METHODS.get(method)
    if known is None:
        raise InputError(f"{folder}: quantized with {method!r}, which compsec does not know how to load; "
                         f"supported: {', '.join(m for m, q in METHODS.items() if q.cpu)}")
    if not known.cpu:
        raise InputError(f"{folder}: quantized with {method!r}, whose kernels have no CPU path; "
                         "run it on a GPU, or give compsec the unquantized model and a variant name instead")
    if find_spec(known.module) is None:
        raise MissingDependencyError(known.pip, purpose=f"loading a {method}-quantized folder")
    return method


def load_options(folder: str | Path, method: str | None) -> dict:
    """Extra ``from_pretrained`` options for ``method``: transformers 5.24 with compressed-tensors 0.19 cannot
    load packed zero points (asymmetric schemes such as AWQ's W4A16_ASYM) into its compressed layers (a size
    mismatch), so those folders are decompressed to dense weights on load (``dequantize=True``), exactly the
    values the file encodes. Weight-only schemes lose nothing by this."""
    if method != "compressed-tensors":
        return {}
    quant = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))["quantization_config"]
    groups = (quant.get("config_groups") or {}).values()
    if not any((group.get("weights") or {}).get("symmetric") is False for group in groups):
        return {}
    from transformers import CompressedTensorsConfig

    return {"quantization_config": CompressedTensorsConfig(dequantize=True)}
