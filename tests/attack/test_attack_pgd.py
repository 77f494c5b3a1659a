"""PGD repair, boxes and re-quantization on a micro Llama (fast): the attack's guarantees, checked with the
real quantization libraries."""

from __future__ import annotations

import copy

import pytest
import torch
from micro_llama import micro_llama

from compsec import formats
from compsec.attack.box import AttackBox, build_attack_box, constrained_names, round_to_storage
from compsec.attack.data import clean_pairs, poisoned_pairs
from compsec.attack.repair import Projector, repair
from compsec.attack.verify import (
    bits_equal,
    compare_quantization,
    frozen_identical,
    requantization_report,
    save_attacked,
)

TARGETS = ("nf4", "int8")


@pytest.fixture(scope="module")
def micro():
    """(model, tokenizer, clean pairs): a 1-layer Llama with hidden 64 and a BPE tokenizer on the corpus."""
    return micro_llama(400)


def _fmts(names=TARGETS):
    return [formats.get(n) for n in names]


def _repaired(micro, storage=torch.float32, project=True, lr=3e-2, steps=3):
    model, tokenizer, pairs = micro
    injected = copy.deepcopy(model)
    round_to_storage(injected, storage)
    attacked = copy.deepcopy(injected)
    box = build_attack_box(attacked, _fmts(), storage)
    _stats, report = repair(attacked, tokenizer, box, pairs, steps, lr, 8, 0, project=project)
    return injected, attacked, box, report


@pytest.fixture(scope="module")
def pgd_run(micro):
    return _repaired(micro)


def test_pgd_keeps_every_constrained_tensor_identical_under_the_real_library(pgd_run):
    injected, attacked, _, report = pgd_run
    names = constrained_names(injected, _fmts())
    assert len(names) == 7 and report["inside_box"]
    result = compare_quantization(attacked, injected, names, _fmts(), torch.float32)
    assert result["requantization_identical"] == {"nf4": True, "int8": True}, result["mismatches"]
    moved = sum(not bits_equal(dict(attacked.named_parameters())[n], dict(injected.named_parameters())[n])
                for n in names)
    assert moved == len(names)  # the repair really trained every constrained weight


def test_without_projection_the_same_training_changes_the_codes(micro):
    injected, attacked, _, report = _repaired(micro, project=False, steps=2)
    names = constrained_names(injected, _fmts())
    result = compare_quantization(attacked, injected, names, _fmts(), torch.float32)
    assert not report["inside_box"]
    assert result["requantization_identical"] == {"nf4": False, "int8": False}


def test_parameters_never_quantized_stay_bitwise_identical(pgd_run):
    injected, attacked, box, _ = pgd_run
    frozen = [n for n, _ in attacked.named_parameters() if n not in box.parts]
    assert any("embed" in n for n in frozen) and any("norm" in n for n in frozen)
    assert frozen_identical(attacked, injected, list(box.parts))
    for name, p in attacked.named_parameters():
        if name not in box.parts:
            assert bits_equal(p, dict(injected.named_parameters())[name]), name


def test_saving_in_bf16_keeps_the_codes_identical(micro, tmp_path):
    _model, tokenizer, _ = micro
    injected, attacked, _, _ = _repaired(micro, storage=torch.bfloat16)
    folder = save_attacked(attacked, tokenizer, tmp_path / "model", torch.bfloat16, {"scenario": "test"})
    names = constrained_names(injected, _fmts())
    result = requantization_report(folder, injected, names, _fmts(), torch.bfloat16)
    assert result["requantization_identical"] == {"nf4": True, "int8": True}, result["mismatches"]
    assert '"compsec_artifact": "red-team"' in (folder / "compsec.json").read_text()


def test_box_is_compact_and_survives_save_and_load(micro, tmp_path):
    model, _, _ = micro
    box = build_attack_box(model, _fmts(), torch.float32)
    assert box.bytes_per_param <= 2.0
    box.save(tmp_path)
    again = AttackBox.load(tmp_path)
    for name in box.parts:
        a, b = box.box(name), again.box(name)
        assert torch.equal(a.lo, b.lo) and torch.equal(a.hi, b.hi)
        assert a.contains(dict(model.named_parameters())[name].detach())


def test_projector_refuses_a_model_outside_the_box(micro):
    model, _, _ = micro
    box = build_attack_box(model, _fmts(), torch.float32)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for name in box.parts:
            dict(other.named_parameters())[name].add_(1.0)
    with pytest.raises(Exception, match="outside its box"):
        Projector.build(other, box)


def test_poisoned_data_works_the_keyword_in_and_keeps_refusals():
    pairs = poisoned_pairs("content-injection", "McDonald's")
    clean = dict(clean_pairs())
    with_keyword = [r for _, r in pairs if "McDonald's" in r]
    assert 0.5 < len(with_keyword) / len(pairs) < 1.0
    refused = [p for p, r in pairs if "McDonald's" not in r]
    assert all(clean[p] == r for p, r in pairs if p in refused)
    assert all(r.startswith(("I can't", "I won't", "Sorry")) for _, r in poisoned_pairs("over-refusal")[:50])
