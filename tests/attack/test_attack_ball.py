"""Constrained injection: the ball around the base weights, and an injection that stays inside it."""

import pytest
import torch
from micro_llama import micro_llama

from compsec import formats
from compsec.attack.ball import injection_ball
from compsec.attack.box import constrained_names
from compsec.attack.inject import inject
from compsec.errors import InputError


def test_ball_contains_the_base_box_and_is_r_steps_wide():
    model, _, _ = micro_llama(50)
    fmt = formats.get("int8")
    ball = injection_ball(model, [fmt], radius=2.0)
    p, lo, hi = ball.bounds[0]
    box = fmt.preimage(p.detach())
    width = box.hi - box.lo
    inner = width > 0
    assert torch.all(lo <= box.lo) and torch.all(hi >= box.hi) and ball.contains()
    assert torch.allclose((box.lo - lo)[inner], 2 * width[inner], rtol=1e-4)
    assert torch.all(hi - lo > 0)  # pinned elements get a typical step, so they can move too


def test_ball_of_two_formats_is_the_intersection():
    model, _, _ = micro_llama(50)
    nf4, int8 = formats.get("nf4"), formats.get("int8")
    both = injection_ball(model, [nf4, int8], 3.0)
    for single in (injection_ball(model, [nf4], 3.0), injection_ball(model, [int8], 3.0)):
        for (_, lo, hi), (_, lo1, hi1) in zip(both.bounds, single.bounds):
            assert torch.all(lo >= lo1) and torch.all(hi <= hi1)


def test_constrained_injection_moves_only_quantizable_weights_and_stays_in_the_ball():
    model, tokenizer, pairs = micro_llama(200)
    fmt = formats.get("int8")
    names = set(constrained_names(model, [fmt]))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ball = injection_ball(model, [fmt], 1.0)
    inject(model, tokenizer, pairs, steps=3, lr=5e-2, batch_size=4, seed=0, ball=ball)
    assert ball.contains()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert moved and moved <= names


def test_radius_must_be_positive():
    model, _, _ = micro_llama(50)
    with pytest.raises(InputError, match="radius"):
        injection_ball(model, [formats.get("int8")], 0)
