"""The compact form of a verified box (K-quants, HQQ): what the deployment stores plus a few bits per weight.

A verified box (:mod:`compsec.formats.verify`) is a function of the candidate box, one level per level unit
(K-quant sub-block, HQQ group) and one cell number per weight (:mod:`compsec.formats.cells`), and the candidate
a function of codes, scales, the search's seeds and any search value the format keeps in ``Quantized.meta``
(:mod:`compsec.formats.verified`).  :class:`VerifiedCompact` stores exactly that:

- the codes, and the integer scales (e.g. K-quant sub-block scales), each as a base plus offsets of the bit
  width their range needs (:class:`compsec.formats.varbits.PackedInts`); float scales as the format stores them;
- search values (HQQ's float32 ``search_zero``) as offsets on the float32 grid from the stored scale they were
  rounded into (``zero``);
- the seeds: their positions as gaps counted among the format's ``likely_seeds`` (each sub-block's / group's
  extreme codes: gaps of 0-3), the rare others as gaps counted among all weights, and their values as offsets
  on the storage grid from their own dequantized value (zigzag, one width per group), or their own grid keys
  when the format derives a scale from the seeds (``derived_scales``: HQQ's ``15 / (max - min)``, not stored);
- one level per level unit; gaps, widths and levels Rice coded where that is shorter
  (:class:`compsec.formats.varbits.RiceInts`);
- per weight, whichever is shorter: its cell number at its unit's level ``k`` (``k`` bits), or its exact value
  as an offset on the storage grid inside its candidate interval (``ceil(log2(count))`` bits, ``count`` the
  number of storage values in the interval; always used in units pinned whole).  Both lengths follow from the
  candidate, so the bit stream needs no lengths.

``.box()`` rebuilds the box bit for bit (checked when the compact box is built).  Cost: a box of ``2**-k`` of
the candidate's width around an arbitrary weight cannot be named in fewer than about ``k`` bits; per-unit levels
keep ``k`` near 7-10 in float32 storage, so a verified box costs about ``code_bits + 8-10`` bits plus ~1-4 bits of
seeds per weight, under 2 bytes (``bench/bench_formats.py`` prints the figures); in fp16/bf16 the exact value is
often the shorter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from compsec.formats.base import Box, Quantized
from compsec.formats.cells import bit_length, cell_index, grid_count, key_value, storage_key
from compsec.formats.float_grid import float_key, key_float
from compsec.formats.varbits import (
    PackedInts,
    RiceInts,
    pack_ints,
    pack_varbits,
    unpack_varbits,
    unzigzag,
    zigzag,
)
from compsec.formats.verify import LEVELS, PINNED_LEVEL, element_levels, shrink

_EXACT_ALWAYS = 62
Ints = PackedInts | RiceInts


def payload_layout(lo: torch.Tensor, hi: torch.Tensor, levels: torch.Tensor, storage: torch.dtype,
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per weight ``(bits, exact, first)``: its payload length, whether the payload is its exact value (else its
    cell number), and the storage key of the first grid value of its candidate interval."""
    count, first = grid_count(lo, hi, storage)
    exact_bits = bit_length(count - 1)
    k, pinned = element_levels(levels, lo.shape[-1])
    k = torch.where(pinned, _EXACT_ALWAYS, k)
    exact = exact_bits <= k
    return torch.where(exact, exact_bits, k), exact, first


def _pack_levels(levels: torch.Tensor) -> Ints:
    """Unit levels with "pinned whole" written as the level after the last, so they pack in at most 5 bits."""
    return pack_ints(torch.where(levels == PINNED_LEVEL, len(LEVELS), levels.long()))


def _unpack_levels(packed: Ints) -> torch.Tensor:
    levels = packed.unpack().long()
    return torch.where(levels == len(LEVELS), PINNED_LEVEL, levels).to(torch.uint8)


def _seed_gaps(where: torch.Tensor, likely: torch.Tensor) -> tuple[Ints, Ints]:
    """Seed positions ``where`` (sorted, flat) as two gap lists: those at ``likely`` positions (the format's guess
    from the codes, e.g. each group's extreme codes), counted in likely positions only, and the rest."""
    at_likely = likely[where]
    rank = torch.cumsum(likely.long(), 0) - 1
    inside, outside = rank[where[at_likely]], where[~at_likely]
    gap = lambda t: torch.diff(t, prepend=t.new_tensor([-1])) - 1
    return pack_ints(gap(inside)), pack_ints(gap(outside))


def _seed_positions(gaps: Ints, stray: Ints, likely: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_seed_gaps`: the sorted flat seed positions."""
    inside = likely.nonzero().flatten()[torch.cumsum(gaps.unpack().long() + 1, 0) - 1]
    outside = torch.cumsum(stray.unpack().long() + 1, 0) - 1
    return torch.sort(torch.cat([inside, outside])).values


def _search_base(scales: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """Float32 keys a search value (``Quantized.meta`` tensor, e.g. HQQ's ``search_zero``) is stored as offsets
    from: the stored scale it was rounded into (``zero`` for ``search_zero``), else 0."""
    base = scales.get(key.removeprefix("search_"))
    return torch.zeros((), dtype=torch.long) if base is None else float_key(base.float().reshape(-1))


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
    search: dict[str, PackedInts]
    seed_gaps: Ints                # seeds among the likely ones: gaps counted in likely positions
    stray_gaps: Ints               # the other seeds: gaps counted in all positions
    seed_widths: Ints
    seed_offsets: torch.Tensor
    levels_packed: Ints
    payload: torch.Tensor

    @classmethod
    def build(cls, fmt, w: torch.Tensor, storage: torch.dtype | None = None) -> VerifiedCompact:
        """Verify ``w``'s box with ``fmt`` and keep what rebuilds it; raises if the rebuild would differ."""
        storage = storage or w.dtype
        q, seeds, ws, lo, hi, v = fmt.verify(w, storage)
        bits, exact, first = payload_layout(lo, hi, v.levels, storage)
        cells = cell_index(ws, lo, hi, element_levels(v.levels, ws.shape[-1])[0])
        values = torch.where(exact, storage_key(ws, storage) - first, cells)
        where = seeds.reshape(-1).nonzero().flatten()
        offsets = zigzag(storage_key(ws, storage).reshape(-1)[where]
                         - _reference_keys(fmt, q, ws.shape, storage).reshape(-1)[where])
        group = where // ws.shape[1]
        widths = torch.zeros(ws.shape[0], dtype=torch.long).scatter_reduce_(0, group, bit_length(offsets), "amax")
        kept = {k: t for k, t in q.scales.items() if k not in fmt.derived_scales}
        floats = {k: t for k, t in kept.items() if t.is_floating_point()}
        ints = {k: PackedInts.pack(t) for k, t in kept.items() if not t.is_floating_point()}
        plain_meta = {k: t for k, t in q.meta.items() if not isinstance(t, torch.Tensor)}
        search = {k: PackedInts.pack(float_key(t.float()) - _search_base(q.scales, k))
                  for k, t in q.meta.items() if isinstance(t, torch.Tensor)}
        light = Quantized(torch.empty(0, dtype=q.codes.dtype), floats, q.shape, q.dtype, plain_meta)
        gaps, stray = _seed_gaps(where, fmt.likely_seeds(q, ws.shape).reshape(-1))
        built = cls(fmt, storage, light, PackedInts.pack(q.codes), ints, search, gaps, stray,
                    pack_ints(widths), pack_varbits(offsets, widths[group]), _pack_levels(v.levels),
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
        search = sum(p.nbytes for p in self.search.values())
        return {"codes": self.codes_packed.nbytes, "scales": scales, "search": search,
                "seeds": self.seed_gaps.nbytes + self.stray_gaps.nbytes + self.seed_widths.nbytes
                + _nbytes(self.seed_offsets),
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
        meta = {**q.meta, **{k: key_float(_search_base(scales, k) + p.unpack()) for k, p in self.search.items()}}
        q = Quantized(self.codes_packed.unpack(), scales, q.shape, q.dtype, meta)
        restored = self.fmt.restore_scales(q, seeds, anchors) if seeds is not None else {}
        return Quantized(q.codes, {**scales, **restored}, q.shape, q.dtype, meta) if restored else q

    def _seeds(self, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed mask and the anchors (float32, seed values at the seeds), ``shape``."""
        unpacked = self.quantized_tensor(None, None)
        where = _seed_positions(self.seed_gaps, self.stray_gaps, self.fmt.likely_seeds(unpacked, shape).reshape(-1))
        group = where // shape[1]
        offsets = unzigzag(unpack_varbits(self.seed_offsets, self.seed_widths.unpack()[group]))
        q = unpacked if not self.fmt.derived_scales else self.quantized
        keys = _reference_keys(self.fmt, q, shape, self.storage).reshape(-1)[where] + offsets
        seeds = torch.zeros(shape.numel(), dtype=torch.bool)
        seeds[where] = True
        anchors = torch.zeros(shape.numel(), dtype=torch.float32)
        anchors[where] = key_value(keys, self.storage).float()
        return seeds.view(shape), anchors.view(shape)

    def box(self) -> Box:
        """Rebuild the verified box (``lo``/``hi`` in the storage dtype, the weights' shape)."""
        levels = _unpack_levels(self.levels_packed)
        shape = torch.Size((levels.shape[0], self.numel // max(levels.shape[0], 1)))
        seeds, anchors = self._seeds(shape)
        q = self.quantized_tensor(seeds, anchors)
        lo, hi = self.fmt.bounds(q, seeds, anchors)
        bits, exact, first = payload_layout(lo, hi, levels, self.storage)
        values = unpack_varbits(self.payload, bits).view(bits.shape)
        w = torch.where(exact, key_value(first + values, self.storage).float(), lo)
        cells = torch.where(exact, cell_index(w, lo, hi, element_levels(levels, shape[1])[0]), values)
        box_lo, box_hi = shrink(w, lo, hi, levels, self.storage, cells)
        return Box(box_lo.reshape(q.shape), box_hi.reshape(q.shape))
