"""Re-derive the outputs of deterministic operations from their source, as tensor digests.

Each deriver takes the source (a safetensors file or folder) and the recorded parameters and returns
name → sha256 of the tensors the operation must have produced, streaming the source one tensor at a time.
Parameters are validated with messages that say which key is wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from compsec.errors import InputError
from compsec.integrity.digests import safetensors_tensor_digests, torch_tensor_digest

CASTABLE = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
            "float64": torch.float64}


def _source_tensors(source: Path):
    from compsec.models.stream import iter_tensors

    return iter_tensors(source)


def derive_copy(source: Path, params: dict) -> dict[str, str]:
    """A copy has exactly the source's tensors."""
    from compsec.models.stream import safetensors_files

    return {name: d.sha256 for f in safetensors_files(source) for name, d in safetensors_tensor_digests(f).items()}


def derive_cast(source: Path, params: dict) -> dict[str, str]:
    """``{"dtype": "bfloat16"}``: floating tensors cast to the dtype, other tensors unchanged."""
    dtype = CASTABLE.get(params.get("dtype"))
    if dtype is None:
        raise InputError(f"cast provenance needs parameters.dtype in {sorted(CASTABLE)}, got {params.get('dtype')!r}")
    return {name: torch_tensor_digest(w.to(dtype) if w.is_floating_point() else w).sha256
            for name, w in _source_tensors(source)}


def _quantized_names(source: Path, params: dict) -> set[str]:
    names = params.get("tensors")
    if names is not None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError("quantize-sim parameters.tensors must be a list of tensor names")
        return set(names)
    from compsec.models.linear import quantizable_weights

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return {record.name for record in quantizable_weights(source)}


def simulate_quantization(fmt, w: torch.Tensor) -> torch.Tensor:
    """``dequantize(quantize(w))`` cast back to ``w``'s dtype: the weights a deployment of ``fmt`` computes with."""
    return fmt.dequantize(fmt.quantize(w)).to(w.dtype).reshape(w.shape)


def derive_quantize_sim(source: Path, params: dict) -> dict[str, str]:
    """``{"format": "nf4", "tensors": [...]}``: the named (default: quantizable) tensors quantize-simulated."""
    from compsec import formats

    if not isinstance(params.get("format"), str):
        raise InputError("quantize-sim provenance needs parameters.format, a registered format name such as 'nf4'")
    fmt = formats.get(params["format"])
    targets = _quantized_names(source, params)
    digests = {}
    for name, w in _source_tensors(source):
        chosen = name in targets and w.is_floating_point() and fmt.supports(tuple(w.shape))
        digests[name] = torch_tensor_digest(simulate_quantization(fmt, w) if chosen else w).sha256
    return digests


DERIVERS: dict[str, Callable[[Path, dict], dict[str, str]]] = {
    "copy": derive_copy, "cast": derive_cast, "quantize-sim": derive_quantize_sim,
}
