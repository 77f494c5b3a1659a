"""The attack's ``deployed`` stage: the real libraries deploy the weights the simulation computes with.

``load_with_bitsandbytes`` loads a folder the way ``BitsAndBytesConfig(load_in_4bit=True, ...)`` users do; the
weights bitsandbytes then holds (dequantized by bitsandbytes itself) must equal compsec's simulation bit for bit
on every quantizable weight of the tiny assistant, and ``lm_head`` must stay a plain linear layer.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec import formats
from compsec.attack.deployed import deploying_library, identical_share


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 8), cols=st.integers(1, 64), changed=st.integers(0, 8))
def test_identical_share_counts_bit_equal_weights(seed, rows, cols, changed):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    changed = min(changed, w.numel())
    other = w.clone().reshape(-1)
    other[:changed] = torch.nextafter(other[:changed], torch.full((changed,), float("inf")))
    share = identical_share({"a": other.reshape(rows, cols)}, {"a": w})
    assert share == round((w.numel() - changed) / w.numel(), 6)
    assert identical_share({}, {"a": w}) == 0.0  # a weight the library left unquantized counts as different


def test_each_target_names_the_library_that_deploys_it():
    assert [deploying_library(f) for f in ("nf4", "fp4", "int8")] == ["bitsandbytes"] * 3
    assert deploying_library("q4_0") == "llama.cpp" and deploying_library("q8_0") == "llama.cpp"
    assert deploying_library("hqq") is None and deploying_library("int4-rtn") is None


@pytest.mark.parametrize("name", ["nf4", "fp4", "int8"])
def test_bitsandbytes_deploys_exactly_the_simulated_weights(tiny_model_dir, tiny_assistant, name):
    from compsec.attack.box import constrained_names
    from compsec.attack.deployed import bitsandbytes_weights, load_with_bitsandbytes

    fmt, (model, _) = formats.get(name), tiny_assistant
    names = constrained_names(model, [fmt])
    loaded = load_with_bitsandbytes(tiny_model_dir, name)
    params = dict(model.named_parameters())
    simulated = {n: fmt.dequantize(fmt.quantize(params[n].detach())).float() for n in names}
    deployed = bitsandbytes_weights(loaded, names)
    assert sorted(deployed) == sorted(names)
    assert identical_share(deployed, simulated) == 1.0
    assert type(loaded.lm_head) is torch.nn.Linear


def test_a_missing_llama_cpp_skips_its_types_instead_of_failing(monkeypatch):
    from compsec.errors import MissingDependencyError

    def missing():
        raise MissingDependencyError("llama-cpp-python", extra="gguf-k")

    monkeypatch.setattr("compsec.models.gguf_quantize.llama_types", missing)
    assert deploying_library("q4_0") is None and deploying_library("nf4") == "bitsandbytes"
