"""Safety-aware mixed precision: the folder loads in transformers with REAL bitsandbytes modules, the kept
modules are plain nn.Linear, and the budget and ranking are respected."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.defend.mixed import choose_protected, parse_budget
from compsec.errors import InputError


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=4), st.tuples(st.floats(0, 1), st.integers(1, 100)),
                       min_size=1, max_size=12), st.floats(0, 0.99))
def test_choose_protected_keeps_within_budget_and_prefers_sensitive(table, budget):
    sensitivity = {n: s for n, (s, _) in table.items()}
    sizes = {n: k for n, (_, k) in table.items()}
    kept = choose_protected(sensitivity, sizes, budget)
    assert sum(sizes[n] for n in kept) <= budget * sum(sizes.values()) + 1e-9
    for skipped in set(table) - set(kept):  # a skipped tensor was either too big or less sensitive than all kept
        fits = sum(sizes[n] for n in kept) + sizes[skipped] <= budget * sum(sizes.values())
        assert not fits or all(sensitivity[k] >= sensitivity[skipped] for k in kept)


def test_budget_parsing():
    assert parse_budget("5%") == pytest.approx(0.05) and parse_budget("0.1") == pytest.approx(0.1)
    for bad in ("100%", "-1", "lots"):
        with pytest.raises(InputError):
            parse_budget(bad)


def test_quantize_cli_writes_a_bitsandbytes_folder_that_transformers_loads(micro_dir, tmp_path):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from compsec.models.linear import quantizable_weights

    out = tmp_path / "mixed"
    assert run(["quantize", str(micro_dir), "--format", "nf4", "--protect", "auto", "--budget", "20%",
                "--texts", "8", "--out", str(out)]) == 0
    plan = json.loads((out / "mixed_precision.json").read_text())
    names = {q.name for q in quantizable_weights(micro_dir)}
    assert set(plan["sensitivity"]) == names and plan["protected"]
    top = max(plan["sensitivity"], key=plan["sensitivity"].get)
    assert plan["protected"][0] == top and 0 < plan["kept_fraction"] <= 0.2
    model = AutoModelForCausalLM.from_pretrained(str(out), device_map="cpu")
    modules = dict(model.named_modules())
    for name in names:
        module = modules[name.removesuffix(".weight")]
        if name in plan["protected"]:
            assert type(module) is torch.nn.Linear
        else:
            assert isinstance(module, bnb.nn.Linear4bit) and module.weight.quant_state.blocksize == 64
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer("What is the capital of Peru?", return_tensors="pt").input_ids
    generated = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids.shape[1]
    record = json.loads((out / "provenance.json").read_text())
    assert record["operation"] == "quantize-mixed" and record["parameters"]["protected"] == plan["protected"]


def test_int8_with_explicit_protection_and_bad_format(micro_dir, tmp_path):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM

    kept = "model.layers.0.mlp.down_proj"
    out = tmp_path / "int8"
    assert run(["quantize", str(micro_dir), "--format", "int8", "--protect", kept, "--out", str(out)]) == 0
    modules = dict(AutoModelForCausalLM.from_pretrained(str(out), device_map="cpu").named_modules())
    assert type(modules[kept]) is torch.nn.Linear
    assert isinstance(modules["model.layers.0.mlp.up_proj"], bnb.nn.Linear8bitLt)
    assert run(["quantize", str(micro_dir), "--format", "q4_0", "--protect", "none", "--out", str(tmp_path / "x")]) == 2
