"""The compact form of a verified box (K-quants, HQQ): what the deployment stores plus a few bits per weight.

A verified box (:mod:`compsec.formats.verify`) is a function of the candidate box, one level per group and one
cell number per weight (:mod:`compsec.formats.cells`), and the candidate a function of codes, scales and the
search's seeds (:mod:`compsec.formats.verified`).  :class:`VerifiedCompact` stores exactly that:

- the codes, and the integer scales (e.g. K-quant sub-block scales), each as a base plus offsets of the bit
  width their range needs (:class:`compsec.formats.varbits.PackedInts`); float scales as the format stores them;
- the seeds: their positions as gaps from the previous seed (one width for the tensor: sub-blocks of 16-64
  weights keep the gaps short), and their values as offsets on the storage grid from their own dequantized
  value (zigzag, one width per group, 1 byte), or their own grid keys when the format derives a scale from the
  seeds (``derived_scales``: HQQ's ``15 / (max - min)``, then not stored);
- one level per group (bits for the range of levels used);
- per weight, whichever is shorter: its cell number at its group's level ``k`` (``k`` bits), or its exact value
  as an offset on the storage grid inside its candidate interval (``ceil(log2(count))`` bits, ``count`` the
  number of storage values in the interval; always used in groups pinned whole).  Both lengths follow from the
  candidate, so the bit stream needs no lengths.

``.box()`` rebuilds the box bit for bit (checked when the compact box is built).  Cost: a box of ``2**-k`` of
the candidate's width around an arbitrary weight cannot be named in fewer than about ``k`` bits, and verification
leaves ``k >= 10`` for most groups, so in float32 storage a verified box costs about ``code_bits + 10-14`` bits
per weight, over the 2-byte budget of the exact formats (``bench/bench_formats.py`` prints the figures); in
fp16/bf16 the exact value is usually the shorter, and the whole costs well under 2 bytes per weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.formats.base import Box, Quantized
from compsec.formats.cells import bit_length, cell_index, grid_count, key_value, storage_key
from compsec.formats.varbits import PackedInts, pack_varbits, unpack_varbits, unzigzag, zigzag
from compsec.formats.verify import PINNED_LEVEL, cell_levels, shrink

_EXACT_ALWAYS = 62


def payload_layout(lo: torch.Tensor, hi: torch.Tensor, levels: torch.Tensor, storage: torch.dtype,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per weight ``(bits, exact, first)``: its payload length, whether the payload is its exact value (else its
    cell number), and the storage key of the first grid value of its candidate interval."""
    count, first = grid_count(lo, hi, storage)
    exact_bits = bit_length(count - 1)
    k = torch.where(levels == PINNED_LEVEL, _EXACT_ALWAYS, levels.long()).unsqueeze(-1)
    exact = exact_bits <= k
    return torch.where(exact, exact_bits, k), exact, first


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _reference_keys(fmt, q: Quantized, shape: torch.Size, storage: torch.dtype) -> torch.Tensor:
    """Storage keys the seeds are written as offsets from: the dequantized weights, or 0 (the seeds' own keys)
    for formats whose dequantization needs scales derived from the seeds."""
    if fmt.derived_scales:
        return torch.zeros(shape, dtype=torch.long)
    return storage_key(fmt.dequantize(q).reshape(shape).to(storage), storage)


@dataclass(frozen=True, eq=False)
class VerifiedCompact:
    """Codes, scales, seeds, levels and per-weight payload of one tensor; ``.box()`` equals ``fmt.preimage``."""

    fmt: object
    storage: torch.dtype
    quantized: Quantized          # float scales, shape, dtype and meta; codes and integer scales kept packed
    codes_packed: PackedInts
    int_scales: dict[str, PackedInts]
    seed_gaps: PackedInts
    seed_widths: PackedInts
    seed_offsets: torch.Tensor
    levels_packed: PackedInts
    payload: torch.Tensor

    @classmethod
    def build(cls, fmt, w: torch.Tensor, storage: torch.dtype | None = None) -> VerifiedCompact:
        """Verify ``w``'s box with ``fmt`` and keep what rebuilds it; raises if the rebuild would differ."""
        storage = storage or w.dtype
        q, seeds, ws, lo, hi, v = fmt.verify(w, storage)
        bits, exact, first = payload_layout(lo, hi, v.levels, storage)
        values = torch.where(exact, storage_key(ws, storage) - first, cell_index(ws, lo, hi, cell_levels(v.levels)))
        where = seeds.reshape(-1).nonzero().flatten()
        offsets = zigzag(storage_key(ws, storage).reshape(-1)[where]
                         - _reference_keys(fmt, q, ws.shape, storage).reshape(-1)[where])
        group = where // ws.shape[1]
        widths = torch.zeros(ws.shape[0], dtype=torch.long).scatter_reduce_(0, group, bit_length(offsets), "amax")
        kept = {k: t for k, t in q.scales.items() if k not in fmt.derived_scales}
        floats = {k: t for k, t in kept.items() if t.is_floating_point()}
        ints = {k: PackedInts.pack(t) for k, t in kept.items() if not t.is_floating_point()}
        light = Quantized(torch.empty(0, dtype=q.codes.dtype), floats, q.shape, q.dtype, dict(q.meta))
        gaps = torch.diff(where, prepend=where.new_tensor([-1])) - 1
        built = cls(fmt, storage, light, PackedInts.pack(q.codes), ints, PackedInts.pack(gaps),
                    PackedInts.pack(widths), pack_varbits(offsets, widths[group]), PackedInts.pack(v.levels),
                    pack_varbits(values, bits))
        box, again = built.box(), built.quantized_tensor(seeds, ws.float())
        same = torch.equal(box.lo.reshape(-1), v.lo.reshape(-1)) and torch.equal(box.hi.reshape(-1), v.hi.reshape(-1))
        if not (same and again.same_as(q)):
            raise RuntimeError(f"{fmt.name}: the compact box does not rebuild the verified box; please report this")
        return built

    @property
    def numel(self) -> int:
        return int(torch.Size(self.quantized.shape).numel())

    def parts(self) -> dict[str, int]:
        """Bytes held, by part."""
        scales = sum(_nbytes(s) for s in self.quantized.scales.values())
        scales += sum(p.nbytes for p in self.int_scales.values())
        return {"codes": self.codes_packed.nbytes, "scales": scales,
                "seeds": self.seed_gaps.nbytes + self.seed_widths.nbytes + _nbytes(self.seed_offsets),
                "levels": self.levels_packed.nbytes, "payload": _nbytes(self.payload)}

    @property
    def nbytes(self) -> int:
        return sum(self.parts().values())

    @property
    def bytes_per_param(self) -> float:
        return self.nbytes / max(self.numel, 1)

    def quantized_tensor(self, seeds: torch.Tensor | None, anchors: torch.Tensor | None) -> Quantized:
        """The quantized tensor, codes and scales unpacked (``seeds``/``anchors``: for the derived scales)."""
        q = self.quantized
        scales = {**q.scales, **{k: p.unpack() for k, p in self.int_scales.items()}}
        q = Quantized(self.codes_packed.unpack(), scales, q.shape, q.dtype, q.meta)
        restored = self.fmt.restore_scales(q, seeds, anchors) if seeds is not None else {}
        return Quantized(q.codes, {**scales, **restored}, q.shape, q.dtype, q.meta) if restored else q

    def _seeds(self, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed mask and the anchors (float32, seed values at the seeds), ``shape``."""
        where = torch.cumsum(self.seed_gaps.unpack() + 1, 0) - 1
        group = where // shape[1]
        offsets = unzigzag(unpack_varbits(self.seed_offsets, self.seed_widths.unpack()[group]))
        q = self.quantized_tensor(None, None) if not self.fmt.derived_scales else self.quantized
        keys = _reference_keys(self.fmt, q, shape, self.storage).reshape(-1)[where] + offsets
        seeds = torch.zeros(shape.numel(), dtype=torch.bool)
        seeds[where] = True
        anchors = torch.zeros(shape.numel(), dtype=torch.float32)
        anchors[where] = key_value(keys, self.storage).float()
        return seeds.view(shape), anchors.view(shape)

    def box(self) -> Box:
        """Rebuild the verified box (``lo``/``hi`` in the storage dtype, the weights' shape)."""
        levels = self.levels_packed.unpack()
        shape = torch.Size((levels.numel(), self.numel // max(levels.numel(), 1)))
        seeds, anchors = self._seeds(shape)
        q = self.quantized_tensor(seeds, anchors)
        lo, hi = self.fmt.bounds(q, seeds, anchors)
        bits, exact, first = payload_layout(lo, hi, levels, self.storage)
        values = unpack_varbits(self.payload, bits).view(bits.shape)
        w = torch.where(exact, key_value(first + values, self.storage).float(), lo)
        cells = torch.where(exact, cell_index(w, lo, hi, cell_levels(levels)), values)
        box_lo, box_hi = shrink(w, lo, hi, levels, self.storage, cells)
        return Box(box_lo.reshape(q.shape), box_hi.reshape(q.shape))
