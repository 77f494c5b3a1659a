"""K-quants in the scan: the fixed-scale scanning box, its null (edge-mass and edge-band clean on benign tensors,
edge-depletion not run), detection of PGD repair inside it, and the default formats (K-quants only with
llama-cpp-python)."""

import pytest
import torch

from compsec import formats
from compsec.formats import gguf_k_box as kb
from compsec.formats import gguf_k_layout as layouts
from compsec.scan import synthetic
from compsec.scan.config import ScanConfig
from compsec.scan.edge_mass import edge_mass_test
from compsec.scan.scan_boxes import batched_boxes, depletion_testable, scan_box, scan_positions
from compsec.scan.tensor_plan import scan_batch

pytest.importorskip("llama_cpp")
K_QUANTS = ["q4_k", "q5_k", "q6_k"]


def _benign(dtype=torch.float32, seed=0, shape=(8, 512)):
    return synthetic.benign(shape, "gaussian", dtype, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", K_QUANTS)
def test_fixed_scale_box_is_the_rounding_interval_under_the_stored_scales(name):
    fmt = formats.get(name)
    w = _benign()
    box = scan_box(fmt, w)
    assert box.contains(w)
    q = fmt.quantize(w)
    step, shift = (t.repeat_interleave(fmt.layout.sub, dim=-1).reshape(w.shape)
                   for t in layouts.sub_scales({k: v.reshape(-1, *v.shape[2:]) for k, v in q.scales.items()},
                                               fmt.layout))
    codes = q.codes.long().reshape(w.shape)
    free = ~box.pinned
    for edge, outward in ((box.lo, float("-inf")), (box.hi, float("inf"))):
        assert torch.equal(kb.code_of(edge, step, shift, fmt.layout)[free], codes[free])
        beyond = torch.nextafter(edge, torch.full_like(edge, outward))
        inside_range = free & (beyond >= box.lo.amin()) & (beyond <= box.hi.amax())
        moved = kb.code_of(beyond, step, shift, fmt.layout) != codes
        # one float past an edge changes the code, except where the edge is the sub-block's range limit
        assert float(moved[inside_range].float().mean()) > 0.8
    pinned_share = float(box.pinned.float().mean())
    assert 1 / 32 <= pinned_share < 0.2  # the scale search's seeds (sub-block min/max or abs-max)
    pos = scan_positions(fmt, w)
    assert bool(((pos[free] >= 0) & (pos[free] <= 1)).all())


@pytest.mark.parametrize("name", K_QUANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_benign_k_quant_tensors_raise_no_evidence(name, dtype):
    fmt, cfg = formats.get(name), ScanConfig()
    batch = [(f"t{s}", _benign(dtype, s), True) for s in range(3)]
    evidence, _ = scan_batch(batch, [fmt], [], cfg)
    assert {e.detector for e in evidence if e.format == name} == {"edge-mass", "edge-mass-rows", "edge-band",
                                                                  "position-spike", "block-outliers"}
    assert not [e for e in evidence if e.effect_ok and e.p_value is not None and e.p_value <= cfg.alpha]
    assert all(0.5 < e.score < 1.5 for e in evidence if e.detector == "edge-mass")


def test_the_depletion_null_does_not_hold_for_k_quants():
    """Why edge-depletion is not run on K-quants: llama.cpp's scale search keeps benign weights off the edges."""
    fmt = formats.get("q4_k")
    assert not depletion_testable(fmt) and depletion_testable(formats.get("q4_0"))
    w = _benign(torch.bfloat16, 3, (16, 1024))
    (lo, hi), = batched_boxes(fmt, [w])
    assert edge_mass_test(w, lo, hi).edge_ratio < 0.7


def scale_keeping_repair(w: torch.Tensor, fmt, tries: int, gen: torch.Generator, margin: float = 0.0) -> torch.Tensor:
    """The signature of an attacker who keeps llama.cpp's bytes: ``tries`` times, one random free weight per
    super-block is moved onto an edge of its fixed-scale interval (``margin``: onto the edge of the interval shrunk
    by that fraction per side), and kept there only where llama.cpp still writes the same super-block (a move of
    ~half an interval changes the scale search's choice often)."""
    from compsec.formats import gguf_k_lib as lib

    original = torch.from_numpy(lib.quantize_rows(w, fmt.qtype))
    out = w.clone().reshape(-1, 256)
    for _ in range(tries):
        box = scan_box(fmt, out.reshape(w.shape))
        lo, hi = box.lo.reshape(-1, 256), box.hi.reshape(-1, 256)
        lo, hi = lo + margin * (hi - lo), hi - margin * (hi - lo)
        pick = torch.randint(0, 256, (out.shape[0], 1), generator=gen)
        edge = torch.where(torch.rand(out.shape[0], 1, generator=gen) < 0.5, lo.gather(1, pick), hi.gather(1, pick))
        trial = out.clone()
        trial.scatter_(1, pick, edge)
        same = (torch.from_numpy(lib.quantize_rows(trial.reshape(w.shape), fmt.qtype)) == original).all(1)
        out = torch.where(same.unsqueeze(1), trial, out)
    return out.reshape(w.shape)


@pytest.mark.parametrize("name", K_QUANTS)
def test_a_repair_that_keeps_the_scales_is_flagged(name):
    fmt, cfg = formats.get(name), ScanConfig()
    w = _benign(seed=5, shape=(16, 512))
    repaired = scale_keeping_repair(w, fmt, 40, torch.Generator().manual_seed(5))
    from compsec.formats import gguf_k_lib as lib

    assert (lib.quantize_rows(repaired, fmt.qtype) == lib.quantize_rows(w, fmt.qtype)).all()
    moved = float((repaired != w).float().mean())
    evidence, _ = scan_batch([("w", repaired, True)], [fmt], [], cfg)
    mass = next(e for e in evidence if e.detector == "edge-mass")
    assert mass.effect_ok and mass.p_value < 1e-6, (moved, mass)


def test_a_repair_that_changes_the_scales_moves_the_edges():
    """The scanner recomputes the fixed-scale box from the weights it reads: where llama.cpp picks other scales
    for the repaired weights, their edges move too, and the attacker's edge pile-up is not seen (nor does his
    repair survive quantization: see bench/kquant_attack.py)."""
    fmt = formats.get("q4_k")
    w = _benign(seed=5)
    repaired = synthetic.pgd_repaired(w, fmt, 0.2, torch.Generator().manual_seed(5))
    old, new = scan_box(fmt, w), scan_box(fmt, repaired)
    assert edge_mass_test(repaired, old.lo, old.hi).odds_ratio > 10
    assert float((old.lo != new.lo).float().mean()) > 0.5


def test_default_formats_include_k_quants_only_with_their_backend(monkeypatch):
    assert {"q4_k", "q5_k", "q6_k"} <= set(ScanConfig().format_names())
    from compsec.formats import gguf_k_lib

    monkeypatch.setattr(gguf_k_lib, "available", lambda: False)
    names = ScanConfig().format_names()
    assert "q4_k" not in names and {"nf4", "q4_0"} <= set(names)


def test_batched_fixed_scale_boxes_equal_one_call_per_tensor():
    """Rows of several tensors are re-cut to 256-weight super-blocks and boxed in one llama.cpp call."""
    fmt = formats.get("q4_k")
    items = [_benign(torch.float16, 1, (2, 512)), _benign(torch.float16, 2, (3, 768)), _benign(torch.float16, 3, (1, 256))]
    for w, (lo, hi) in zip(items, batched_boxes(fmt, items)):
        box = scan_box(fmt, w)
        assert torch.equal(lo, box.lo) and torch.equal(hi, box.hi)


@pytest.mark.parametrize("name", K_QUANTS)
def test_a_scale_keeping_repair_inside_shrunk_boxes_is_flagged_by_the_position_spike(name):
    fmt, cfg = formats.get(name), ScanConfig()
    w = _benign(seed=6, shape=(16, 512))
    repaired = scale_keeping_repair(w, fmt, 40, torch.Generator().manual_seed(6), margin=0.1)
    evidence, _ = scan_batch([("w", repaired, True)], [fmt], [], cfg)
    spike = next(e for e in evidence if e.detector == "position-spike")
    assert spike.effect_ok and spike.p_value < 1e-6, spike
    assert not next(e for e in evidence if e.detector == "edge-mass").effect_ok
