"""The architecture table on tiny random models built from configs (no downloads), loaded or header-only."""

import warnings

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    Phi3Config,
    PhiConfig,
    Qwen2Config,
)

from compsec.errors import InputError
from compsec.models.architectures import architecture_for, head_counts
from compsec.models.io import save_model
from compsec.models.linear import never_quantized, quantizable_weights

DECODER = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}
LLAMA_ROLES = {"q", "k", "v", "o", "gate", "up", "down"}
CASES = {
    "llama": (lambda: AutoModelForCausalLM.from_config(LlamaConfig(**DECODER)), LLAMA_ROLES),
    "qwen2": (lambda: AutoModelForCausalLM.from_config(Qwen2Config(**DECODER)), LLAMA_ROLES),
    "mistral": (lambda: AutoModelForCausalLM.from_config(MistralConfig(**DECODER)), LLAMA_ROLES),
    "phi": (lambda: AutoModelForCausalLM.from_config(PhiConfig(**DECODER)), {"q", "k", "v", "o", "mlp-in", "mlp-out"}),
    "phi3": (lambda: AutoModelForCausalLM.from_config(Phi3Config(**DECODER)),
             {"qkv-fused", "o", "gate-up-fused", "down"}),
    "gpt2": (lambda: AutoModelForCausalLM.from_config(GPT2Config(n_embd=16, n_layer=2, n_head=4, vocab_size=64,
                                                                 n_positions=32, bos_token_id=1, eos_token_id=1)),
             {"qkv-fused", "o", "mlp-in", "mlp-out"}),
    "bert": (lambda: BertForMaskedLM(BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=32, vocab_size=64)),
             {"q", "k", "v", "o", "mlp-in", "mlp-out", "head-transform"}),
}


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {name: build() for name, (build, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_roles_layers_and_shapes_match_the_real_modules(name, models):
    model, roles = models[name], CASES[name][1]
    records = quantizable_weights(model)
    assert {r.role for r in records} == roles
    params = dict(model.named_parameters())
    for record in records:
        assert params[record.name].shape == record.shape and len(record.shape) == 2
        module = model.get_submodule(record.name.rsplit(".", 1)[0])
        assert type(module).__name__ == ("Conv1D" if name == "gpt2" else "Linear")
        assert record.transposed is (name == "gpt2")
    in_layers = [r for r in records if r.layer is not None]
    assert {r.layer for r in in_layers} == {0, 1}
    assert len(in_layers) == 2 * len([role for role in roles if role != "head-transform"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_never_quantized_covers_the_rest(name, models):
    model = models[name]
    skipped = never_quantized(model)
    quantizable = {r.name for r in quantizable_weights(model)}
    assert quantizable.isdisjoint(skipped) and quantizable | set(skipped) == set(dict(model.named_parameters()))
    assert "embedding" in skipped.values() and "norm" in skipped.values()
    assert "other" not in skipped.values()
    assert all(reason == "bias" for n, reason in skipped.items() if n.endswith(".bias"))


def test_gpt2_conv1d_is_stored_in_by_out(models):
    record = next(r for r in quantizable_weights(models["gpt2"]) if r.role == "qkv-fused")
    assert record.shape == (16, 48) and record.transposed


@pytest.mark.parametrize("name", ["llama", "gpt2", "phi3"])
def test_header_only_listing_equals_loaded_listing(name, models, tmp_path):
    save_model(models[name], None, tmp_path)
    from_header = {(r.layer, r.role, r.shape, r.transposed) for r in quantizable_weights(tmp_path)}
    from_model = {(r.layer, r.role, r.shape, r.transposed) for r in quantizable_weights(models[name])}
    assert from_header == from_model


def test_head_counts_from_table():
    assert head_counts(LlamaConfig(**DECODER)) == (4, 2, 4)
    assert head_counts({"model_type": "gpt2", "n_head": 12, "n_embd": 768}) == (12, 12, 64)
    assert head_counts({"model_type": "llama", "num_attention_heads": 9, "num_key_value_heads": 3,
                        "hidden_size": 576}) == (9, 3, 64)
    with pytest.raises(InputError, match="unknown model_type"):
        head_counts({"model_type": "mamba"})


def test_unknown_architecture_falls_back_with_a_warning():
    names = {"backbone.blocks.3.mixer.in_proj.weight": (32, 16), "backbone.blocks.3.norm.weight": (16,),
             "backbone.embeddings.weight": (64, 16), "lm_head.weight": (64, 16), "backbone.blocks.3.conv.bias": (4,)}
    assert architecture_for({"model_type": "mamba"}) is None
    with pytest.warns(UserWarning, match="not in compsec's architecture table"):
        records = quantizable_weights(names, {"model_type": "mamba"})
    assert [(r.name, r.layer, r.role) for r in records] == [("backbone.blocks.3.mixer.in_proj.weight", 3, "linear")]


def test_known_architecture_does_not_warn(models):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quantizable_weights(models["llama"])
