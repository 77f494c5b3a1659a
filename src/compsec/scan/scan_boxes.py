"""The intervals the scanner measures positions in, per format, and their batched computation.

Exact formats (bnb, GGUF q4_0/q8_0/..., rtn): the preimage itself (``fmt.preimage``), whose edges are where a
weight would change its code or a scale.

K-quants (``q2_k`` ... ``q6_k``, family ``gguf-k``): their *verified* boxes (:mod:`compsec.formats.verify`) are
shrunk until llama.cpp's scale search provably settles on the same scales, which leaves them nearly zero-width
(2**-10 to 2**-16 of an interval): positions in them say nothing about tampering.  The scanner uses instead the
**fixed-scale box** (``candidate_box``, :mod:`compsec.formats.gguf_k_box`): holding each super-block's stored
``d``/``dmin`` and sub-block scales/mins fixed, each weight's interval is exactly the float range that rounds to
the same code (within its sub-block's range; the sub-block's min/max, or abs-max, which seed the scale search,
are pinned).  These are the rounding intervals of the code grid, the same position semantics as an exact
format's box.  An attacker repairing a model inside a K-quant box must keep the codes and in practice keeps the
scales (moving a weight beyond its rounding interval changes its code under any nearby scale), so projected
gradient descent presses weights against exactly these edges.

Null model.  llama.cpp picks the scales by a search that minimises the (weighted) rounding error of the
super-block, so benign weights sit closer to the centres of their fixed-scale intervals than a smooth density
would put them: measured on Gaussian/Laplace tensors in fp32/fp16/bf16, the share within 1 % of an edge is
0.44-0.9x the grid-aware expectation and the outer-25 % band share 0.82-0.96x.  Both effects point away from the
tamper signatures, so the edge-mass (edge versus adjacent band) and edge-band (excess) tests stay valid
(conservative: benign odds 0.6-1.2, no p below 1e-2 in 1,500 benign tensors), but the edge-*depletion* test,
whose null is the absolute expectation, would call every benign tensor depleted: it is not run on these boxes
(:func:`depletion_testable`).  An adaptive attacker who keeps 10 % of each fixed-scale interval free
(``bench/kquant_attack.py``), which got through the other tests, is caught by the position spike his clamped
weights leave at 10 % (:mod:`compsec.scan.position_spike`).
"""

from __future__ import annotations

import torch

from compsec.formats.base import Box, Format
from compsec.scan.blocks import GGUF_SUPER_BLOCK, block_size_of

SEARCHED_SCALE_FAMILIES = ("gguf-k",)  # formats whose scanning box is the fixed-scale candidate


def fixed_scale(fmt: Format) -> bool:
    """Whether the scanner measures ``fmt``'s positions in its fixed-scale box instead of its preimage."""
    return fmt.family in SEARCHED_SCALE_FAMILIES


def scan_box(fmt: Format, rows: torch.Tensor) -> Box:
    """The box whose edges the scanner tests for ``rows`` (storage dtype, rows a whole number of ``fmt``'s
    blocks): the fixed-scale box for K-quants, the exact preimage otherwise; ``lo``/``hi`` in ``rows.dtype``."""
    return fmt.candidate_box(rows) if fixed_scale(fmt) else fmt.preimage(rows)


def scan_positions(fmt: Format, rows: torch.Tensor) -> torch.Tensor:
    """Position of each weight in its scanning interval (0 lower edge, 1 upper edge, NaN pinned)."""
    return scan_box(fmt, rows).positions(rows)


def depletion_testable(fmt: Format) -> bool:
    """Whether the edge-depletion test's absolute null holds for ``fmt``'s scanning box (not for K-quants, whose
    scale search itself keeps weights off the edges: see the module docs)."""
    return not fixed_scale(fmt)


def box_rows(fmt: Format, rows: torch.Tensor) -> int:
    """Row length to which examined rows can be re-cut without changing ``fmt``'s blocks (so that rows of many
    tensors share one box call): the block (a K-quant's 256-weight super-block) for block formats, the row
    itself for row-wise ones."""
    size = GGUF_SUPER_BLOCK if fmt.family == "gguf-k" else block_size_of(fmt, rows.shape[-1])
    return size if size < rows.shape[-1] and rows.numel() % size == 0 else rows.shape[-1]


def batched_boxes(fmt: Format, items: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``fmt``'s scanning box (:func:`scan_box`) of each tensor in ``items`` (same dtype), in as few calls as
    possible.

    A box computation has a large fixed cost per call, so the examined rows of many tensors are re-cut to a
    common row length (:func:`box_rows`), concatenated, boxed once per length and split back.
    """
    out: list = [None] * len(items)
    groups: dict[int, list[int]] = {}
    for i, rows in enumerate(items):
        groups.setdefault(box_rows(fmt, rows), []).append(i)
    for length, members in groups.items():
        joined = torch.cat([items[i].reshape(-1, length) for i in members])
        box = scan_box(fmt, joined)
        sizes = [items[i].numel() for i in members]
        for i, lo, hi in zip(members, box.lo.reshape(-1).split(sizes), box.hi.reshape(-1).split(sizes)):
            out[i] = (lo.view(items[i].shape), hi.view(items[i].shape))
    return out
