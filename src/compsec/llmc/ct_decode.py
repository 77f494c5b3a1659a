"""Read a compressed-tensors folder's weights back to float, independently of the compressed-tensors package.

What llm-compressor saved is decoded with the arithmetic compressed-tensors documents, re-implemented here
so tests and provenance checks compare against an independent reading of the file:

- ``pack-quantized``: ``weight_packed`` int32 words hold a little-endian bit stream of ``num_bits``-bit codes
  stored as ``q + 2**(num_bits-1)`` along each row; an asymmetric ``weight_zero_point`` is packed the same way
  down the columns. ``w = (float(q) - float(zp)) * scale`` with one scale per output row (channel) or per
  ``group_size`` input columns (group): shapes ``weight_scale`` (out, 1) or (out, in / group_size).
- ``float-quantized`` / ``int-quantized`` (naive): ``weight`` stored in float8_e4m3fn / int8, same formula.
- dense (sparse folders without sparse compression, and unquantized tensors): ``weight`` as stored.

Worked example (int4, symmetric, group 128): a row of 256 weights is 32 int32 words; word 0's bits 0-3 are
column 0's code ``q + 8``; ``weight_scale[r, 1]`` scales columns 128..255.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.errors import InputError


@dataclass(frozen=True)
class DecodedWeight:
    """One Linear weight: its float values, codes (None for dense), scale and zero point as stored."""

    weight: torch.Tensor
    codes: torch.Tensor | None = None
    scale: torch.Tensor | None = None
    zero_point: torch.Tensor | None = None
    group_size: int | None = None


def unpack_int32(packed: torch.Tensor, num_bits: int, columns: int) -> torch.Tensor:
    """Signed codes (rows, columns) from a (rows, words) int32 bit stream (see the module docstring)."""
    bits = (packed.to(torch.int64).unsqueeze(-1) >> torch.arange(32)) & 1
    stream = bits.reshape(packed.shape[0], -1)[:, :columns * num_bits]
    weights = 1 << torch.arange(num_bits)
    codes = (stream.reshape(packed.shape[0], columns, num_bits) * weights).sum(-1)
    return codes - (1 << (num_bits - 1))


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | None) -> torch.Tensor:
    """``(q - zp) * scale`` in the scale's dtype, scales repeated over their groups of input columns."""
    repeat = codes.shape[1] // scale.shape[1]
    values = codes.to(scale.dtype)
    if zero_point is not None:
        values = values - zero_point.to(scale.dtype).repeat_interleave(repeat, dim=1)
    return values * scale.repeat_interleave(repeat, dim=1)


def weights_args(config: dict) -> dict:
    """The ``weights`` quantization args of the (single) config group, or {} for an unquantized folder."""
    groups = (config.get("quantization_config") or {}).get("config_groups") or {}
    if len(groups) > 1:
        raise InputError("several compressed-tensors config groups are not supported; decode one group at a time")
    return next(iter(groups.values()), {}).get("weights") or {}


def decode_module(tensors: dict[str, torch.Tensor], prefix: str, args: dict) -> DecodedWeight:
    """Decode the weight of the Linear module ``prefix`` (e.g. ``model.layers.0.mlp.up_proj``)."""
    scale, zero = tensors.get(f"{prefix}.weight_scale"), tensors.get(f"{prefix}.weight_zero_point")
    if f"{prefix}.weight_packed" in tensors:
        rows, columns = (int(v) for v in tensors[f"{prefix}.weight_shape"])
        bits = int(args["num_bits"])
        codes = unpack_int32(tensors[f"{prefix}.weight_packed"], bits, columns)
        if zero is not None:
            zero = unpack_int32(zero.T.contiguous(), bits, rows).T
        return DecodedWeight(dequantize(codes, scale, zero), codes, scale, zero, args.get("group_size"))
    weight = tensors[f"{prefix}.weight"]
    if scale is None:
        return DecodedWeight(weight)
    codes = weight.to(torch.float32) if weight.dtype.is_floating_point else weight.to(torch.int64)
    return DecodedWeight(dequantize(codes, scale, zero), weight, scale, zero, args.get("group_size"))


def decode_folder(folder: str | Path) -> dict[str, DecodedWeight]:
    """``{"<module>.weight": DecodedWeight}`` for every quantized or dense Linear weight of the folder."""
    import json

    from safetensors.torch import load_file

    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tensors = {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(f).items()}
    args = weights_args(config)
    prefixes = {name.rsplit(".", 1)[0] for name in tensors if name.endswith((".weight_packed", ".weight_scale"))}
    decoded = {f"{p}.weight": decode_module(tensors, p, args) for p in sorted(prefixes)}
    for name, tensor in tensors.items():
        if name.endswith(".weight") and tensor.ndim == 2 and name not in decoded:
            decoded[name] = DecodedWeight(tensor)
    return decoded
