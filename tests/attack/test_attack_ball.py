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


def test_inject_stage_hash_depends_on_radius_and_then_on_targets(tmp_path):
    from compsec.attack.config import AttackConfig

    def inject_hash(**kw):
        return AttackConfig(out=str(tmp_path), **kw).stage_hash("inject")

    assert inject_hash(targets=("nf4",)) == inject_hash(targets=("int8",))  # radius 0: targets don't matter
    assert inject_hash(inject_radius=4) != inject_hash()
    assert inject_hash(inject_radius=4, targets=("nf4",)) != inject_hash(inject_radius=4, targets=("int8",))
    with pytest.raises(InputError, match="inject-radius"):
        AttackConfig(out=str(tmp_path), inject_radius=-1)


def test_cli_constrained_int8_attack_keeps_frozen_weights_and_codes(tmp_path):
    import json

    from compsec.cli.main import run
    from compsec.models.io import load_model, save_model

    model, tokenizer, _ = micro_llama(300)
    base = save_model(model, tokenizer, tmp_path / "base")
    out = tmp_path / "attack"
    args = ["attack", "--out", str(out), "--model", str(base), "--targets", "int8", "--inject-radius", "4",
            "--inject-steps", "3", "--repair-steps", "2", "--batch-size", "4", "--probe-limit", "2",
            "--max-new-tokens", "4", "--no-ablation"]
    assert run(args) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["requantization_identical"] == {"int8": True} and summary["config"]["inject_radius"] == 4
    injected, _ = load_model(out / "injected")
    quantizable = set(constrained_names(injected, [formats.get("int8")]))
    reference = dict(model.named_parameters())
    for name, p in injected.named_parameters():
        if name not in quantizable:
            assert torch.equal(p.detach(), reference[name].detach()), name
