"""Decode a pre-quantized model folder's weights for the scanner: dequantized values and stored scales.

A folder a user downloads already quantized names its method in ``config.json``'s
``quantization_config.quant_method``; each method compsec can decode has a reader here (:data:`READERS`):

- ``compressed-tensors`` (llm-compressor: pack-quantized int4 / int8 groups or channels, int-quantized,
  float-quantized FP8, dense sparse weights): :func:`compsec.llmc.ct_decode.decode_folder`, compsec's own reading
  of the documented pack format (independent of the compressed-tensors package);
- ``bitsandbytes`` (``save_pretrained`` of a ``load_in_4bit`` / ``load_in_8bit`` model): 4-bit weights are
  dequantized by bitsandbytes itself (``QuantState.from_dict`` + ``dequantize_4bit``, double quant included),
  LLM.int8 weights as ``codes * SCB / 127`` per row.

Every reader yields :class:`QuantizedWeight` records for the folder's quantizable linear weights only
(embeddings, norms and ``lm_head`` are left out by name). Nothing is unpickled: only ``.safetensors`` files are
read. A method without a reader, or a damaged folder, is an :class:`~compsec.errors.InputError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError


@dataclass(frozen=True)
class QuantizedWeight:
    """One quantized linear weight of a folder.

    ``scheme``: what is stored (``nf4``, ``int4-g128``, ``int8-row``, ``fp8-channel``, ``dense``...);
    ``weight``: dequantized float32 ``(rows, columns)``; ``scales``: the stored scale of each group, float32
    ``(rows, groups)`` (None when they are not per row); ``coded``: values are integer codes times a scale (a
    block collapses to one code), False for floating codes (FP8) and dense weights."""

    name: str
    scheme: str
    weight: torch.Tensor
    scales: torch.Tensor | None
    coded: bool


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise InputError(f"{folder}: no .safetensors weights in this pre-quantized folder; nothing to scan")
    try:
        return {name: t for f in files for name, t in load_file(str(f)).items()}
    except (OSError, RuntimeError, ValueError) as err:
        raise InputError(f"{folder}: the safetensors reader refuses it ({' '.join(str(err).split())[:120]})") from None


def _linear(name: str, weight: torch.Tensor) -> bool:
    from compsec.models.linear import never_reason

    return weight.ndim == 2 and never_reason(name) is None


def _per_row(scales: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    if scales is None or scales.numel() % rows:
        return None
    return scales.to(torch.float32).reshape(rows, -1)


def ct_weights(folder: Path) -> Iterator[QuantizedWeight]:
    """compressed-tensors: every Linear weight, decoded by :mod:`compsec.llmc.ct_decode`."""
    from compsec.llmc.ct_decode import decode_folder, weights_args

    args = weights_args(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    _tensors(folder)  # one clear line when the weights are missing or unreadable
    try:
        decoded = decode_folder(folder)
    except (KeyError, RuntimeError, ValueError) as err:
        raise InputError(f"{folder}: a compressed-tensors weight cannot be decoded ({err!r}); the folder is "
                         "damaged or uses a compression compsec does not read") from None
    for name, item in decoded.items():
        if not _linear(name, item.weight):
            continue
        if item.codes is None:
            yield QuantizedWeight(name, "dense", item.weight.to(torch.float32), None, False)
            continue
        kind = "fp" if item.codes.dtype.is_floating_point else "int"
        grouping = f"g{item.group_size}" if item.group_size else "channel"
        bits = args.get("num_bits", 8)
        yield QuantizedWeight(name, f"{kind}{bits}-{grouping}", item.weight.to(torch.float32),
                              _per_row(item.scale, item.weight.shape[0]), kind == "int")


def _bnb_4bit(stored: dict, weight: str) -> QuantizedWeight:
    import bitsandbytes.functional as F

    parts = {k[len(weight) + 1:]: v for k, v in stored.items() if k.startswith(weight + ".")}
    try:
        state = F.QuantState.from_dict(parts, device=torch.device("cpu"))
        values = F.dequantize_4bit(stored[weight], state).to(torch.float32)
        absmax = state.absmax if state.state2 is None else F.dequantize_blockwise(state.absmax, state.state2)
        absmax = absmax.to(torch.float32) + (0 if state.offset is None else state.offset)
    except (AssertionError, KeyError, RuntimeError, ValueError, TypeError) as err:
        raise InputError(f"{weight}: not a bitsandbytes 4-bit weight bitsandbytes can read ({err!r}); the "
                         "folder is damaged") from None
    rows = values.shape[0]
    scales = _per_row(absmax, rows) if values.shape[1] % state.blocksize == 0 else None
    return QuantizedWeight(weight, state.quant_type, values, scales, True)


def _bnb_8bit(stored: dict, weight: str) -> QuantizedWeight:
    codes, scb = stored[weight], stored[weight.removesuffix("weight") + "SCB"].to(torch.float32)
    if codes.ndim != 2 or codes.dtype != torch.int8 or scb.numel() != codes.shape[0]:
        raise InputError(f"{weight}: int8 codes {list(codes.shape)} and {scb.numel()} row scales (SCB) do not "
                         "match; the folder is damaged")
    values = codes.to(torch.float32) * scb.reshape(-1, 1) / 127
    return QuantizedWeight(weight, "int8-row", values, scb.reshape(-1, 1), True)


def bnb_weights(folder: Path) -> Iterator[QuantizedWeight]:
    """bitsandbytes-serialized: 4-bit (nf4 / fp4, double quant) and LLM.int8 weights; other 2-D linear weights
    (left in 16/32 bits) as dense."""
    from compsec.integrity.bnb_provenance import is_auxiliary, quantized_weight_kinds

    stored = _tensors(folder)
    quantized = quantized_weight_kinds(stored)
    for name in sorted(stored):
        kind = quantized.get(name)
        if kind == "4bit":
            yield _bnb_4bit(stored, name)
        elif kind == "8bit":
            yield _bnb_8bit(stored, name)
        elif not is_auxiliary(name, quantized) and stored[name].is_floating_point() and _linear(name, stored[name]):
            yield QuantizedWeight(name, "dense", stored[name].to(torch.float32), None, False)


READERS: dict[str, Callable[[Path], Iterator[QuantizedWeight]]] = {
    "compressed-tensors": ct_weights, "bitsandbytes": bnb_weights}


def prequantized_method(folder: Path) -> str | None:
    """The folder's quant_method when it is a pre-quantized folder compsec can decode; None for an ordinary
    (unquantized) model; InputError for a damaged config or a method without a reader."""
    from compsec.integrity.serialized_provenance import quant_method

    method = quant_method(folder)
    if method is not None and method.lower() not in READERS:
        raise InputError(f"{folder}: quantized with {method!r}, whose stored weights compsec scan cannot decode "
                         f"(decodable: {', '.join(sorted(READERS))}); scan the full-precision model instead")
    return None if method is None else method.lower()
