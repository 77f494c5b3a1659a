"""Nested (double-quantized) NF4/FP4: the pure-torch copy of bitsandbytes' CPU 8-bit blockwise kernel, the
nested statistics and the box (the plain format's, which pins every abs-max)."""

from __future__ import annotations

import pytest
import torch

from compsec import formats
from compsec.formats import bnb_dq
from compsec.formats.bnb_math import load_functional

from .conftest import random_weights


def _vectors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(1000, generator=gen)
    return {"gaussian": noise, "tiny": noise * 1e-30, "huge": noise * 1e30, "zeros": torch.zeros(512),
            "one-block-of-zeros": torch.cat([torch.zeros(256), noise[:300]]), "partial-tail": noise[:300],
            "midpoints": bnb_dq.dynamic_code()[:-1] * 0.5 + bnb_dq.dynamic_code()[1:] * 0.5}


@pytest.mark.parametrize("case", list(_vectors()))
def test_blockwise_8bit_matches_the_cpu_kernel_bit_for_bit(case):
    x = _vectors()[case]
    ours, absmax = bnb_dq.quantize_blockwise_cpu(x)
    ref, state = load_functional().quantize_blockwise(x, blocksize=256)
    assert torch.equal(ours, ref.reshape(-1)), f"{case}: {int((ours != ref.reshape(-1)).sum())} indices differ"
    assert torch.equal(absmax, state.absmax)


@pytest.mark.parametrize("name", ["nf4-dq", "fp4-dq"])
def test_nested_box_is_the_plain_box_and_dequantizes_like_bitsandbytes(name):
    fmt = formats.get(name)
    plain = formats.get(name.removesuffix("-dq"))
    w = random_weights((16, 512), torch.float32, seed=8)
    nested_box, plain_box = fmt.preimage(w), plain.preimage(w)
    assert torch.equal(nested_box.lo, plain_box.lo) and torch.equal(nested_box.hi, plain_box.hi)
    packed, state = load_functional().quantize_4bit(w, blocksize=64, quant_type=fmt.quant_type,
                                                    compress_statistics=True)
    ref = load_functional().dequantize_4bit(packed, state)
    assert torch.equal(fmt.dequantize(fmt.quantize(w)), ref)


def test_nested_statistics_refuse_foreign_weights():
    fmt = formats.get("nf4-dq")
    w = random_weights((4, 256), torch.float32, seed=9)
    with pytest.raises(ValueError):
        fmt.box_from_quantized(fmt.quantize(w), w * 2)
