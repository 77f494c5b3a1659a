"""Every unpinned element at once (not a sample): all lower edges together, all upper edges together, keep the
library's output; every element moved one float past its edge (staying inside its block's range, so no scale can
move) changes its own code under the real library.  Covers the per-(block, code) edge tables end to end,
including a partial last block."""

from __future__ import annotations

import pytest
import torch

from compsec import formats

from .conftest import random_weights

CASES = [("nf4", (1000,), 64), ("fp4", (1000,), 64), ("nf4-b256", (8, 96), 256), ("int8", (6, 300), 300),
         ("int4-rtn", (4, 256), 128), ("int2-rtn", (4, 128), 64), ("q4_0", (4, 128), 32), ("q4_1", (4, 128), 32),
         ("q8_0", (4, 128), 32)]


def _block_range(w: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-element min and max of its block of ``block`` flat elements (a partial last block included)."""
    flat = w.reshape(-1).float()
    pad = (-flat.numel()) % block
    low = torch.nn.functional.pad(flat, (0, pad), value=float("inf")).view(-1, block).amin(1)
    high = torch.nn.functional.pad(flat, (0, pad), value=float("-inf")).view(-1, block).amax(1)
    n = flat.numel()
    return low.repeat_interleave(block)[:n].view(w.shape), high.repeat_interleave(block)[:n].view(w.shape)


@pytest.mark.parametrize(("name", "shape", "block"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_edge_is_sound_and_tight(name, shape, block, seed):
    fmt = formats.get(name)
    w = random_weights(shape, torch.float32, seed=seed, scale=0.05)
    box, want = fmt.preimage(w), fmt.reference_quantize(w)
    assert fmt.reference_quantize(box.lo).same_as(want) and fmt.reference_quantize(box.hi).same_as(want)
    low, high = _block_range(w, block)
    limit = torch.maximum(low.abs(), high.abs()) if fmt.family == "bnb" else None
    for up in (False, True):
        edge = box.hi if up else box.lo
        past = torch.nextafter(edge, torch.full_like(edge, float("inf") if up else float("-inf")))
        inside = (past > -limit) & (past < limit) if limit is not None else (past > low) & (past < high)
        move = ~box.pinned & inside
        assert int(move.sum()) > w.numel() // 4, "too few elements to test"
        got = fmt.reference_quantize(torch.where(move, past, w))
        assert got.scales.keys() == want.scales.keys()
        for key in want.scales:
            assert torch.equal(got.scales[key], want.scales[key]), f"{name}: moving inside the range moved {key}"
        changed = got.codes.reshape(-1) != want.codes.reshape(-1)
        assert bool(changed[move.reshape(-1)].all()), f"{name}: an element one float past its edge kept its code"
