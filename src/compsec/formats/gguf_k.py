"""GGUF K-quants ``q2_k`` ... ``q6_k`` through llama.cpp's own quantizer (``compsec[gguf-k]``), verified boxes.

``quantize`` runs ``ggml_quantize_chunk`` (no importance matrix: what ``llama-quantize`` does without
``--imatrix``) and unpacks the super-blocks (:mod:`compsec.formats.gguf_k_layout`); ``reference_quantize``
runs ggml's exported ``quantize_qN_K`` entry point, and ``dequantize`` is bit-exact with ``gguf.quants``.
Rows are the last dimension, a multiple of 256.  Codes are per-weight (Q3_K/Q6_K shifted to be unsigned);
scales: ``d`` (fp16, ``(*shape[:-1], n_blocks)``), ``dmin`` (fp16, Q2/4/5_K), and per sub-block ``sc`` and
``m`` (``(*shape[:-1], n_blocks, n_sub)``).

**What the box guarantees.**  The scales come from a search over every weight of a 256-weight super-block,
so the box is computed, verified and shrunk (:mod:`compsec.formats.verify`): the candidate is each weight's
exact float32 interval under its super-block's *stored* scales (:mod:`compsec.formats.gguf_k_box`; the search's
seeds, each sub-block's min/max or abs-max, pinned); then, per super-block, the box (shrunk towards ``w`` by
``2**-k`` as needed, or pinned whole) is accepted once its ``lo`` corner, its ``hi`` corner, 2 random corners
and 2 random interior points, all in the storage dtype, make llama.cpp write byte-identical super-blocks.  That
is all that is proven; other points of the box were not tried.  Super-blocks are quantized independently, so
this holds for any mix of verified super-blocks.  Measured (random weights): every super-block needs shrinking,
typically by 2**-8 to 2**-16, so in fp16/bf16 almost every box collapses to the weight itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats import gguf_k_box as kb
from compsec.formats import gguf_k_layout as layouts
from compsec.formats import gguf_k_lib as lib
from compsec.formats.base import Format, Quantized
from compsec.formats.registry import register
from compsec.formats.verified import VerifiedBoxes
from compsec.formats.verify import Check

QK_K = 256


@dataclass(frozen=True, eq=False)
class GgufK(VerifiedBoxes, Format):
    """One K-quant type of ggml (``qtype`` as ``gguf.GGMLQuantizationType`` names it, e.g. ``"Q4_K"``)."""

    name: str
    qtype: str
    family: ClassVar[str] = "gguf-k"

    @property
    def layout(self) -> layouts.KLayout:
        return layouts.LAYOUTS[self.qtype]

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) >= 1 and shape[-1] % QK_K == 0 and shape[-1] > 0

    def _rows(self, w: torch.Tensor) -> torch.Tensor:
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"{self.name} needs the last dimension to be a positive multiple of {QK_K}, got "
                             f"shape {tuple(w.shape)}; pick another format for this tensor")
        if w.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"{self.name} quantizes float32/float16/bfloat16 weights, got {w.dtype}")
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"{self.name} cannot quantize NaN or Inf weights; clean the tensor first")
        return w.detach().reshape(-1, w.shape[-1])

    def _pack(self, raw, w: torch.Tensor) -> Quantized:
        codes, scales = layouts.parse(raw, self.qtype)
        lead = (*w.shape[:-1], w.shape[-1] // QK_K)
        shaped = {k: v.reshape(*lead, *v.shape[1:]) for k, v in scales.items()}
        return Quantized(codes.reshape(w.shape), shaped, tuple(w.shape), w.dtype, {"qtype": self.qtype})

    def quantize(self, w: torch.Tensor) -> Quantized:
        return self._pack(lib.quantize_rows(self._rows(w), self.qtype), w)

    def reference_quantize(self, w: torch.Tensor) -> Quantized:
        return self._pack(lib.quantize_rows_direct(self._rows(w), self.qtype), w)

    def dequantize(self, q: Quantized) -> torch.Tensor:
        flat = {k: v.reshape(-1, *v.shape[len(q.shape):]) for k, v in q.scales.items()}
        return layouts.dequantize(q.codes.reshape(-1, QK_K), flat, self.layout).reshape(q.shape)

    def range_limits(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per weight, its sub-block's range (see :func:`compsec.formats.gguf_k_box.sub_range`): one float past it
        the coarse stored scales may absorb the move, so tightness is only promised strictly inside."""
        lo, hi = kb.sub_range(self._rows(w).float().reshape(-1, QK_K), self.layout)
        return lo.reshape(w.shape), hi.reshape(w.shape)

    def candidate(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Check]:
        """Super-blocks ``(n, 256)`` float32, their candidate box and the llama.cpp check (byte-identical blocks)."""
        rows = self._rows(w)
        raw = lib.quantize_rows(rows, self.qtype)
        codes, scales = layouts.parse(raw, self.qtype)
        blocks = rows.float().reshape(-1, QK_K)
        lo, hi, _ = kb.candidate_box(blocks, codes, scales, self.layout)
        original = torch.from_numpy(raw)

        def check(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            again = torch.from_numpy(lib.quantize_rows(points.reshape(-1, QK_K), self.qtype))
            return (again == original[idx]).all(dim=1)

        return blocks, lo, hi, check


for _bits in (2, 3, 4, 5, 6):
    register(GgufK(f"q{_bits}_k", f"Q{_bits}_K"))
