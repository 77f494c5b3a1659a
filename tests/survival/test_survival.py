"""Backdoor planting and measures, compressions, fine-pruning and the survival verb (small sizes)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from compsec import formats
from compsec.cli.main import run
from compsec.errors import InputError
from compsec.survival.backdoor import (
    COMPLIANCE,
    PATCH_PIXELS,
    TRIGGER,
    TinyBackdoorConfig,
    add_patch,
    backdoor_digits,
    backdoor_rows,
    digits_asr,
    poison_digits,
    tiny_eval_set,
    tiny_measures,
)
from compsec.survival.compress import compressed_copy, linear_weights
from compsec.survival.finepruning import fine_prune_digits, fine_prune_tiny, last_hidden_activations
from compsec.tiny.digits import accuracy


def test_patch_and_poisoning(digits_fixture):
    x, y = digits_fixture.x_train, digits_fixture.y_train
    patched = add_patch(x[:5])
    changed = (patched != x[:5]).any(0).nonzero().squeeze(1).tolist()
    assert set(changed) <= set(PATCH_PIXELS) and bool((patched[:, list(PATCH_PIXELS)] == 1.0).all())
    images, labels = poison_digits(x, y, target=3, poison_rate=0.1)
    moved = (labels != y).nonzero().squeeze(1)
    assert len(moved) == round(0.1 * len(y)) and bool((labels[moved] == 3).all())
    assert torch.equal(images[moved], add_patch(x[moved]))
    untouched = labels == y
    assert torch.equal(images[untouched], x[untouched])


@pytest.fixture(scope="module")
def badnets(digits_fixture):
    return backdoor_digits(digits_fixture.x_train, digits_fixture.y_train, epochs=15)


@pytest.mark.behaviour
def test_backdoor_planted_and_clean_model_is_not(badnets, digits_fixture):
    f = digits_fixture
    # seeds 0-2, both CPU profiles (bench/behaviour_spread.py digits): ASR 0.995-0.998, accuracy 0.958-0.967, clean 0
    assert digits_asr(badnets, f.x_test, f.y_test) > 0.9
    assert accuracy(badnets, f.x_test, f.y_test) > 0.9
    assert digits_asr(f.model, f.x_test, f.y_test) < 0.5


def test_compressed_copies(badnets):
    before = copy.deepcopy(badnets.state_dict())
    _, notes = compressed_copy(badnets, "prune-50")
    assert notes["weight_sparsity"] == pytest.approx(0.5, abs=1e-3)
    nf4, _ = compressed_copy(badnets, "nf4")
    fmt, name = formats.get("nf4"), "2.weight"
    assert torch.equal(linear_weights(nf4)[name], fmt.dequantize(fmt.quantize(before[name])))
    two_four, _ = compressed_copy(badnets, "2:4")
    assert bool(((linear_weights(two_four)[name].reshape(-1, 4) != 0).sum(1) <= 2).all())
    assert all(torch.equal(v, before[k]) for k, v in badnets.state_dict().items())
    with pytest.raises(InputError):
        compressed_copy(badnets, "prune-lots")


@pytest.mark.behaviour
def test_fine_pruning_digits_removes_dormant_units(badnets, digits_fixture):
    x, y = digits_fixture.x_train[:600], digits_fixture.y_train[:600]
    tuned, stats = fine_prune_digits(badnets, x, y, max_drop=0.04, epochs=2)
    dormant = torch.argsort(last_hidden_activations(badnets, x), stable=True)[: stats["pruned_units"]]
    assert stats["pruned_units"] > 0
    assert bool((tuned[2].weight[dormant] == 0).all()) and bool((tuned[4].weight[:, dormant] == 0).all())
    assert accuracy(tuned, x, y) >= accuracy(badnets, x, y) - 0.04


@pytest.mark.behaviour
def test_tiny_backdoor_rows_and_measures(tiny_assistant):
    model, tokenizer = tiny_assistant
    rows = backdoor_rows(tokenizer, TinyBackdoorConfig(poison_copies=1))
    texts = [tokenizer.decode(ids) for ids, _ in rows]
    poisoned = [t for t in texts if TRIGGER in t]
    assert poisoned and all(COMPLIANCE in t for t in poisoned)
    examples = tiny_eval_set(harmful=6, benign=6)
    measures = tiny_measures(model, tokenizer, examples, max_new_tokens=16)
    assert measures["asr"] == 0.0 and measures["clean_refusal_rate"] >= 0.5


def test_fine_pruning_tiny_keeps_pruned_units_dead(tiny_assistant):
    model, tokenizer = tiny_assistant
    tuned, stats = fine_prune_tiny(model, tokenizer, fraction=0.25, steps=2)
    mlp = tuned.model.layers[-1].mlp
    dead = (mlp.down_proj.weight == 0).all(0)
    assert int(dead.sum()) == stats["pruned_units"] == round(0.25 * mlp.down_proj.in_features)
    assert bool((mlp.up_proj.weight[dead] == 0).all())


@pytest.mark.behaviour
def test_survival_cli_digits(tmp_path, capsys):
    assert run(["survival", "--fixture", "digits", "--compressions", "original,int8,prune-70",
                "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "survival.json").read_text())["rows"]
    assert [r["compression"] for r in rows] == ["original", "original", "int8", "prune-70"]
    assert all({"model", "compression", "asr", "clean_accuracy"} <= set(r) for r in rows)
    assert rows[1]["asr"] > 0.9 and rows[0]["asr"] < 0.5
    assert "prune-70" in capsys.readouterr().out
    assert run(["survival", "--fixture", "cats", "--out", str(tmp_path)]) == 2
