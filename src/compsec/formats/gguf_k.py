"""GGUF K-quants ``q2_k`` ... ``q6_k`` through llama.cpp's own quantizer (``compsec[gguf-k]``), verified boxes.

``quantize`` runs ``ggml_quantize_chunk`` (no importance matrix: what ``llama-quantize`` does without
``--imatrix``) and unpacks the super-blocks (:mod:`compsec.formats.gguf_k_layout`); ``reference_quantize``
runs ggml's exported ``quantize_qN_K`` entry point, and ``dequantize`` is bit-exact with ``gguf.quants``.
Rows are the last dimension, a multiple of 256.  Codes are per-weight (Q3_K/Q6_K shifted to be unsigned);
scales: ``d`` (fp16, ``(*shape[:-1], n_blocks)``), ``dmin`` (fp16, Q2/4/5_K), and per sub-block ``sc`` and
``m`` (``(*shape[:-1], n_blocks, n_sub)``).

**What the box guarantees.**  The scales come from a search over every weight of a 256-weight super-block
(``make_qkx2_quants`` / ``make_q3_quants`` / ``make_qx_quants``), then are rounded to fp16 ``d``/``dmin`` and
4-8-bit sub-scales, so no per-weight interval can be derived: the box is computed, verified with llama.cpp and
shrunk (:mod:`compsec.formats.verify`).  The *candidate* (``candidate_box``) is each weight's exact float32
interval under its super-block's *stored* scales (:mod:`compsec.formats.gguf_k_box`), within its sub-block's
range, with the search's seeds (each sub-block's min and max, or abs-max) pinned; it is tight there but not
sound.  Per super-block, the box is then shrunk to the cell of the candidate holding ``w`` when each interval is
cut into ``2**k`` equal cells (``k`` in 0, 4, 8, 10, ..., 24, then pinned whole) until its two corners pass,
is tightened 4x more and passes 2 consecutive full rounds there; a round is the all-``lo`` corner, the all-``hi``
corner, 2 random corners and 2 random interior points, in the storage dtype, each making llama.cpp write a
byte-identical super-block.  That is exactly what is guaranteed: ``lo``, ``hi`` and the 8 random points of the
final rounds; super-blocks are quantized independently, so it holds for the whole tensor.  Other points are not
proven: on random N(0, 0.02) weights 0.1-0.8 % of super-blocks change under 16 fresh random points in fp32
storage, 0-0.1 % in bf16 (``tests/formats/test_verified.py`` bounds it).  Measured on a 1024x1024 N(0, 0.02)
matrix (``bench/bench_formats.py``): every super-block needs shrinking (typically to 2**-10 to 2**-16 of the
candidate; under 0.5 % are pinned whole in fp32), the verified width is 3e-4 to 8e-4 of the candidate's in fp32,
and in bf16 91-99 % of the weights are left with zero-width boxes.  The compact box
(:mod:`compsec.formats.verified_compact`) costs 1.45-1.85 bytes per weight in bf16/fp16 storage and 2.0-2.3 in
fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compsec.formats import gguf_k_box as kb
from compsec.formats import gguf_k_layout as layouts
from compsec.formats import gguf_k_lib as lib
from compsec.formats.base import Format, Quantized, require_finite
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

    def available(self) -> bool:
        """Whether the backend (``compsec[gguf-k]``) is installed: callers probing every registered format (the
        scanner) can skip this one instead of failing with MissingDependencyError."""
        return lib.available()

    def supports(self, shape: tuple[int, ...]) -> bool:
        return len(shape) >= 1 and shape[-1] % QK_K == 0 and shape[-1] > 0

    def _rows(self, w: torch.Tensor) -> torch.Tensor:
        if not self.supports(tuple(w.shape)):
            raise ValueError(f"{self.name} needs the last dimension to be a positive multiple of {QK_K}, got "
                             f"shape {tuple(w.shape)}; pick another format for this tensor")
        require_finite(self.name, w, floats_only=True)
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
        return layouts.dequantize(*self._flat(q), self.layout).reshape(q.shape)

    def range_limits(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per weight, its sub-block's range (see :func:`compsec.formats.gguf_k_box.sub_range`): one float past it
        the coarse stored scales may absorb the move, so tightness is only promised strictly inside."""
        lo, hi = kb.sub_range(self._rows(w).float().reshape(-1, QK_K), self.layout)
        return lo.reshape(w.shape), hi.reshape(w.shape)

    @property
    def code_bits(self) -> int:
        """Bits per code (2 for Q2_K ... 6 for Q6_K)."""
        return self.layout.nmax.bit_length()

    @property
    def level_units(self) -> int:
        """One verified level per sub-block: a sub-block's own scales hold a box far wider than the fp16 ``d``
        its super-block's largest scale sets allows the others."""
        return self.layout.n_sub

    def groups_and_check(self, w: torch.Tensor) -> tuple[torch.Tensor, Quantized, Check]:
        """Super-blocks ``(n, 256)`` float32, the quantized tensor and the llama.cpp check (byte-identical
        super-blocks)."""
        rows = self._rows(w)
        raw = lib.quantize_rows(rows, self.qtype)
        original = torch.from_numpy(raw)

        def check(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            again = torch.from_numpy(lib.quantize_rows(points.reshape(-1, QK_K), self.qtype))
            return (again == original[idx]).all(dim=1)

        return rows.float().reshape(-1, QK_K), self._pack(raw, w), check

    def _flat(self, q: Quantized) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scales = {k: v.reshape(-1, *v.shape[len(q.shape):]) for k, v in q.scales.items()}
        return q.codes.reshape(-1, QK_K), scales

    def seeds(self, groups: torch.Tensor, q: Quantized) -> torch.Tensor:
        """Each sub-block's min and max (abs-max for Q3_K/Q6_K), zero-step sub-blocks; see ``gguf_k_box.seeds``."""
        return kb.seeds(groups, *self._flat(q), self.layout)

    def likely_seeds(self, q: Quantized, shape: torch.Size) -> torch.Tensor:
        """Each sub-block's lowest and highest codes (Q2/4/5_K), or its codes furthest from zero (Q3/Q6_K: the
        top two distances, since the clamp to ``[-offset, offset - 1]`` is not symmetric)."""
        return kb.likely_seeds(q.codes.reshape(shape), self.layout)

    def bounds(self, q: Quantized, seeds: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return kb.bounds(*self._flat(q), seeds, anchors, self.layout)


for _bits in (2, 3, 4, 5, 6):
    register(GgufK(f"q{_bits}_k", f"Q{_bits}_K"))
