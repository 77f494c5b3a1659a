"""GGUF legacy block formats: ``q8_0``, ``q4_0``, ``q4_1``, ``q5_0``, ``q5_1`` (blocks of 32 along each row).

``quantize`` is pure torch (:mod:`compsec.formats.gguf_math`), ``reference_quantize`` runs the ``gguf`` package
(numpy, bit-exact with ggml) and parses its bytes; the box is :mod:`compsec.formats.gguf_box`.  Codes are the
unpacked per-weight integers ggml stores (int8 for Q8_0, unsigned nibbles/5-bit values otherwise); scales are
``{"d": float16}`` plus ``{"m": float16}`` for the ``_1`` types, shaped ``(*shape[:-1], shape[-1] // 32)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from compsec.errors import MissingDependencyError
from compsec.formats import gguf_box as gb
from compsec.formats import gguf_math as gm
from compsec.formats.base import Box, Format, Quantized, require_finite
from compsec.formats.registry import register

BLOCK = 32


@dataclass(frozen=True, eq=False)
class GgufLegacy(Format):
    """One ggml legacy type.  ``scheme``: ``"sym"`` (Q8_0), ``"signed_max"`` (Q4_0/Q5_0) or ``"min_max"``
    (Q4_1/Q5_1); ``level``: 127, ``half`` (8/16) or ``top`` (15/31) respectively."""

    name: str
    qtype: str
    scheme: str
    level: int
    family: ClassVar[str] = "gguf"

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) >= 1 and shape[-1] % BLOCK == 0 and shape[-1] > 0

    def _blocks(self, w: torch.Tensor) -> torch.Tensor:
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"{self.name} needs the last dimension to be a positive multiple of {BLOCK}, "
                             f"got shape {tuple(w.shape)}; pick another format for this tensor")
        require_finite(self.name, w)
        return w.detach().float().reshape(-1, BLOCK)

    def _params(self, blocks: torch.Tensor) -> dict:
        if self.scheme == "sym":
            return gm.sym_params(blocks)
        if self.scheme == "signed_max":
            return gm.signed_max_params(blocks, self.level)
        return gm.min_max_params(blocks, self.level)

    def _codes(self, x: torch.Tensor, p: dict, cast: bool = True) -> torch.Tensor:
        if self.scheme == "sym":
            return gm.sym_codes(x, p, cast)
        if self.scheme == "signed_max":
            return gm.signed_max_codes(x, p, self.level, cast)
        return gm.min_max_codes(x, p, self.level, cast)

    def _pack(self, codes: torch.Tensor, d: torch.Tensor, m: torch.Tensor | None, w: torch.Tensor) -> Quantized:
        shape = tuple(w.shape)
        scale_shape = (*shape[:-1], shape[-1] // BLOCK)
        scales = {"d": d.reshape(scale_shape)}
        if m is not None:
            scales["m"] = m.reshape(scale_shape)
        dtype = torch.int8 if self.scheme == "sym" else torch.uint8
        return Quantized(codes.to(dtype).reshape(shape), scales, shape, w.dtype, {"qtype": self.qtype})

    def quantize(self, w: torch.Tensor) -> Quantized:
        blocks = self._blocks(w)
        p = self._params(blocks)
        m = p["min"].half() if self.scheme == "min_max" else None
        return self._pack(self._codes(blocks, p), p["d"].half(), m, w)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        quants = _gguf_quants()
        blocks = self._blocks(w).cpu().numpy()
        raw = quants.quantize(blocks, quants.GGMLQuantizationType[self.qtype]).reshape(blocks.shape[0], -1)
        codes, d, m = parse_blocks(raw, self.qtype)
        return self._pack(codes, d, m, w)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        codes = q.codes.reshape(-1, BLOCK).float()
        d = q.scales["d"].reshape(-1, 1).float()
        if self.scheme == "sym":
            out = d * codes
        elif self.scheme == "signed_max":
            out = d * (codes - self.level)
        else:
            out = d * codes + q.scales["m"].reshape(-1, 1).float()
        return out.reshape(q.shape)

    def box_from_quantized(self, q: Quantized, w: torch.Tensor) -> Box:
        blocks = self._blocks(w)
        codes = q.codes.to(blocks.device).reshape(-1, BLOCK)
        lo, hi = gb.block_box(blocks, codes, self.scheme, self.level, self._codes)
        return Box(lo.reshape(w.shape), hi.reshape(w.shape))


def parse_blocks(raw: np.ndarray, qtype: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split ggml block bytes ``(n_blocks, type_size)`` into codes ``(n_blocks, 32)``, ``d`` and ``m`` (or None).

    Layouts (little-endian): Q8_0 ``d | 32 x int8``; Q4_0 ``d | 16 bytes``; Q4_1 ``d | m | 16 bytes``;
    Q5_0 ``d | qh (uint32) | 16 bytes``; Q5_1 ``d | m | qh | 16 bytes``.  In the 16 bytes, element ``j < 16`` is
    the low nibble of byte ``j`` and element ``j + 16`` its high nibble; bit ``j`` of ``qh`` is bit 4 of element j.
    """
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    d = torch.from_numpy(raw[:, 0:2].copy().view(np.float16))
    if qtype == "Q8_0":
        return torch.from_numpy(raw[:, 2:34].copy().view(np.int8)).long(), d, None
    m = torch.from_numpy(raw[:, 2:4].copy().view(np.float16)) if qtype.endswith("_1") else None
    at = 4 if m is not None else 2
    high = np.zeros((raw.shape[0], BLOCK), dtype=np.int64)
    if qtype.startswith("Q5"):
        qh = raw[:, at:at + 4].copy().view("<u4").astype(np.int64)
        high = ((qh >> np.arange(BLOCK)) & 1) << 4
        at += 4
    qs = raw[:, at:at + 16].astype(np.int64)
    low = np.concatenate([qs & 0x0F, qs >> 4], axis=1)
    return torch.from_numpy(low | high), d, m


def _gguf_quants():
    try:
        from gguf import quants
    except ImportError as err:
        raise MissingDependencyError("gguf", purpose="the GGUF reference quantizer") from err
    return quants


for _name, _scheme, _level in (("q8_0", "sym", 127), ("q4_0", "signed_max", 8), ("q5_0", "signed_max", 16),
                               ("q4_1", "min_max", 15), ("q5_1", "min_max", 31)):
    register(GgufLegacy(_name, _name.upper(), _scheme, _level))
