"""Per-group outlier clipping (zero / divide) undoes the every-block outlier layout and spares benign weights."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.widen_gap import collapsed_share, widen_gap
from compsec.defend.group_clip import clip_group_outliers
from compsec.errors import InputError
from compsec.scan import synthetic


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), mode=st.sampled_from(["zero", "divide"]),
       dist=st.sampled_from(["gaussian", "laplace"]))
def test_clipping_removes_every_injected_outlier_and_never_grows_a_weight(seed, mode, dist):
    gen = torch.Generator().manual_seed(seed)
    w = synthetic.benign((16, 128), dist, torch.float32, gen)
    attacked, where = widen_gap(w, gen)
    clipped, n = clip_group_outliers(attacked, mode)
    assert n >= where.numel()
    assert bool((clipped.abs() <= attacked.abs()).all())
    if mode == "divide":
        assert torch.allclose(clipped.reshape(-1)[where].abs(), w.reshape(-1)[where].abs())


def test_benign_gaussian_weights_are_left_bit_identical():
    gen = torch.Generator().manual_seed(0)
    w = synthetic.benign((256, 256), "gaussian", torch.float32, gen)
    clipped, n = clip_group_outliers(w)
    assert n == 0 and torch.equal(clipped, w)


@pytest.mark.parametrize("name", ["nf4", "q4_0"])
def test_clipping_restores_the_codes_the_real_library_collapsed(name):
    fmt, gen = formats.get(name), torch.Generator().manual_seed(1)
    w = synthetic.benign((64, 256), "laplace", torch.float32, gen)
    attacked, where = widen_gap(w, gen)
    assert collapsed_share(attacked, fmt, where) > 0.95
    assert collapsed_share(clip_group_outliers(attacked, "divide")[0], fmt, where) < 0.3


def test_bad_mode_says_what_to_use():
    with pytest.raises(InputError, match="zero"):
        clip_group_outliers(torch.zeros(4, 32), "halve")
