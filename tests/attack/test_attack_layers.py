"""``--layers``: only the chosen blocks' linear weights train and are boxed; the rest stays bit-identical."""

from __future__ import annotations

import json

import pytest
from micro_llama import micro_llama

from compsec.attack.config import AttackConfig
from compsec.attack.layers import layer_weight_names, parse_layers
from compsec.cli.main import run
from compsec.errors import InputError
from compsec.formats import get
from compsec.models.io import load_model, save_model
from compsec.models.linear import quantizable_weights

SMALL = ["--inject-steps", "3", "--repair-steps", "3", "--batch-size", "4", "--probe-limit", "2",
         "--max-new-tokens", "3", "--targets", "nf4", "--inject-lr", "1e-2"]


@pytest.fixture(scope="module")
def micro3(tmp_path_factory):
    model, tokenizer, _ = micro_llama(300, layers=3)
    return save_model(model, tokenizer, tmp_path_factory.mktemp("micro3") / "model")


def test_parse_layers_ranges_and_bad_input():
    assert parse_layers("1-3, 7,2") == (1, 2, 3, 7) and parse_layers("") == () and parse_layers("4") == (4,)
    for bad in ("3-1", "a", "1-", "-2", "1,,2x"):
        with pytest.raises(InputError):
            parse_layers(bad)


def test_layer_names_and_missing_blocks(micro3):
    model, _ = load_model(micro3)
    names = layer_weight_names(model, [get("nf4")], (1, 2))
    assert len(names) == 14 and all(".layers.1." in n or ".layers.2." in n for n in names)
    with pytest.raises(InputError, match="0..2"):
        layer_weight_names(model, [get("nf4")], (2, 3))


def test_default_layers_keep_the_old_run_hashes():
    """Golden hashes computed with the code before ``layers``/``responses`` existed."""
    chained = ""
    for stage in ("inject", "box", "repair", "verify", "measure"):
        chained = AttackConfig(out="x").stage_hash(stage, chained)
    assert chained == "e179982679077a05"
    radius = AttackConfig(out="x", inject_radius=4.0, targets=("nf4", "int8"))
    assert radius.stage_hash("inject") == "92eae445d2744b4b"
    assert AttackConfig(out="x", layers=(1,)).stage_hash("inject") != AttackConfig(out="x").stage_hash("inject")


def test_cli_layers_attack_touches_only_those_blocks(micro3, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPSEC_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "attack"
    assert run(["attack", "--out", str(out), "--model", str(micro3), "--layers", "1-2", "--responses", "self",
                *SMALL]) == 0
    summary = json.loads((out / "attack.json").read_text())
    assert summary["requantization_identical"] == {"nf4": True} and summary["frozen_identical"]
    assert summary["box"]["constrained_tensors"] == 14
    verify = json.loads((out / "stages" / "verify.json").read_text())["result"]
    assert verify["tensors_checked"] == 21  # every quantizable weight, not only the constrained ones
    base, _ = load_model(micro3)
    attacked, _ = load_model(out / "model")
    trained = {q.name for q in quantizable_weights(base) if q.layer in (1, 2)}
    params = dict(attacked.named_parameters())
    changed = {n for n, p in base.named_parameters() if not p.detach().equal(params[n].detach())}
    assert changed and changed <= trained
    assert (out / "data" / "clean.jsonl").is_file() and (out / "data" / "poisoned.jsonl").is_file()


@pytest.mark.parametrize("spec, message", [("5-1", "backwards"), ("x", "block index"), ("2-4", "lacks")])
def test_cli_bad_layers_exit_2(micro3, tmp_path, capsys, spec, message):
    args = ["attack", "--out", str(tmp_path / "x"), "--model", str(micro3), "--layers", spec, *SMALL]
    assert run(args) == 2
    assert message in capsys.readouterr().err
