"""Byte layouts of ggml's K-quant super-blocks (256 weights), unpacked into per-weight codes and scales.

Every super-block stores an fp16 super-scale ``d`` (and ``dmin`` for the types with a minimum) and 6-bit (8 for
Q6_K, 4 for Q2_K) integer sub-block scales ``sc`` (and mins ``m``).  The weight ``x`` of code ``q`` in sub-block
``j`` dequantizes to

- Q2_K / Q4_K / Q5_K:  ``(d * sc[j]) * q - (dmin * m[j])``,  ``q`` in ``[0, nmax]`` (3 / 15 / 31);
- Q3_K / Q6_K:         ``(d * sc[j]) * (q - offset)``,        ``q`` in ``[0, 2 * offset)`` (offset 4 / 32),

with ``sc`` signed for Q3_K/Q6_K (Q3_K stores ``sc + 32`` in 6 bits).  Sub-blocks hold 16 weights (Q2_K,
Q3_K, Q6_K) or 32 (Q4_K, Q5_K).  Unpacking follows ``gguf.quants`` (itself bit-exact with ggml).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

QK_K = 256


@dataclass(frozen=True)
class KLayout:
    """Static facts of one K type: sub-block length, code range, whether it has a minimum."""

    qtype: str
    sub: int
    nmax: int
    offset: int
    has_min: bool

    @property
    def n_sub(self) -> int:
        return QK_K // self.sub


LAYOUTS = {
    "Q2_K": KLayout("Q2_K", 16, 3, 0, True),
    "Q3_K": KLayout("Q3_K", 16, 7, 4, False),
    "Q4_K": KLayout("Q4_K", 32, 15, 0, True),
    "Q5_K": KLayout("Q5_K", 32, 31, 0, True),
    "Q6_K": KLayout("Q6_K", 16, 63, 32, False),
}


def _split(raw: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.hsplit(raw, np.cumsum(sizes)[:-1])


def _half(part: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(part.copy().view(np.float16).reshape(-1))


def _bits(packed: np.ndarray, shifts: list[int], mask: int, chunk: int = 32) -> np.ndarray:
    """Bit fields of ``packed`` (n, k): each run of ``chunk`` bytes yields ``len(shifts)`` runs of ``chunk``
    values (the bytes shifted by each shift, masked), in that order: ``(n, k * len(shifts))``."""
    n = packed.shape[0]
    grouped = packed.reshape(n, -1, 1, chunk) >> np.array(shifts, dtype=np.uint8).reshape(1, 1, -1, 1)
    return (grouped & np.uint8(mask)).reshape(n, -1)


def _scale_min_k4(scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8 six-bit scales and mins packed in 12 bytes (Q4_K / Q5_K), each ``(n, 8)`` uint8."""
    d, m, m_d = np.split(scales.reshape(-1, 3, 4), 3, axis=-2)
    sc = np.concatenate([d & 0x3F, (m_d & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (m_d >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc.reshape(-1, 8), mn.reshape(-1, 8)


def _q3_scales(scales: np.ndarray) -> np.ndarray:
    """The 16 six-bit Q3_K scales (minus 32, int8) packed in 12 bytes, ``(n, 16)``."""
    n = scales.shape[0]
    low, high = np.hsplit(scales, [8])
    low = (low.reshape(n, 1, 8) >> np.array([0, 4], dtype=np.uint8).reshape(1, 2, 1)).reshape(n, 16)
    high = (high.reshape(n, 1, 4) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 4, 1)).reshape(n, 16)
    return ((low & 0x0F) | ((high & 0x03) << 4)).astype(np.int8) - np.int8(32)


def parse(raw: np.ndarray, qtype: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Codes ``(n, 256)`` uint8 and scales (``d``/``dmin`` fp16 ``(n,)``; ``sc``/``m`` ``(n, n_sub)``) of raw
    blocks ``(n, bytes_per_block)``."""
    raw = np.ascontiguousarray(raw, dtype=np.uint8)
    if qtype == "Q2_K":
        sc, qs, d, dmin = _split(raw, [16, 64, 2, 2])
        codes = _bits(qs, [0, 2, 4, 6], 3)
        scales = {"d": _half(d), "dmin": _half(dmin), "sc": sc & 0x0F, "m": sc >> 4}
    elif qtype == "Q3_K":
        hmask, qs, sc, d = _split(raw, [32, 64, 12, 2])
        low = _bits(qs, [0, 2, 4, 6], 3)
        high = _bits(hmask, list(range(8)), 1)
        codes = low | (high << 2)
        scales = {"d": _half(d), "sc": _q3_scales(sc)}
    elif qtype in ("Q4_K", "Q5_K"):
        d, dmin, sc, rest = _split(raw, [2, 2, 12, raw.shape[1] - 16])
        if qtype == "Q5_K":
            qh, qs = np.hsplit(rest, [32])
            codes = _bits(qs, [0, 4], 0x0F) | (_bits(qh, list(range(8)), 1) << 4)
        else:
            codes = _bits(rest, [0, 4], 0x0F)
        sc, mn = _scale_min_k4(sc)
        scales = {"d": _half(d), "dmin": _half(dmin), "sc": sc, "m": mn}
    elif qtype == "Q6_K":
        ql, qh, sc, d = _split(raw, [128, 64, 16, 2])
        codes = _bits(ql, [0, 4], 0x0F, chunk=64) | (_bits(qh, [0, 2, 4, 6], 3) << 4)
        scales = {"d": _half(d), "sc": sc.view(np.int8)}
    else:
        raise ValueError(f"{qtype} is not a K-quant type; use one of {', '.join(LAYOUTS)}")
    out = {k: v if isinstance(v, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(v)) for k, v in
           scales.items()}
    return torch.from_numpy(np.ascontiguousarray(codes, dtype=np.uint8)), out


def sub_scales(scales: dict[str, torch.Tensor], layout: KLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """``(step, shift)`` per sub-block, float32 ``(n, n_sub)``, computed as ggml does: ``step = fp32(d) * sc``,
    ``shift = fp32(dmin) * m`` (zero for the symmetric types)."""
    step = scales["d"].float().unsqueeze(-1) * scales["sc"].float()
    if not layout.has_min:
        return step, torch.zeros_like(step)
    return step, scales["dmin"].float().unsqueeze(-1) * scales["m"].float()


def dequantize(codes: torch.Tensor, scales: dict[str, torch.Tensor], layout: KLayout) -> torch.Tensor:
    """Float32 ``(n, 256)`` weights from codes ``(n, 256)`` and scales, bit-exact with ggml's dequantizer."""
    step, shift = sub_scales(scales, layout)
    q = codes.float().reshape(-1, layout.n_sub, layout.sub) - layout.offset
    return (step.unsqueeze(-1) * q - shift.unsqueeze(-1)).reshape(-1, QK_K)
