"""Every llm-compressor recipe on the tiny assistant (slow: one real oneshot each, 4 texts of 32 tokens):
what compsec runs equals what llm-compressor saved, the structure the recipe promises holds, and it answers."""

from __future__ import annotations

import pytest
import torch

from compsec.llmc.recipes import RECIPES

OTHERS = [name for name in RECIPES if name != "gptq-w4a16"]  # gptq-w4a16: the package fixture's tests


def _loaded_weights(folder) -> dict[str, torch.Tensor]:
    """Linear weights as transformers materialises them (compressed-tensors decompressed to dense)."""
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    from compsec.models.prequantized import quant_method

    extra = {"quantization_config": CompressedTensorsConfig(dequantize=True)} if quant_method(folder) else {}
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, **extra)
    return {name: p.data for name, p in model.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_recipe_builds_a_folder_compsec_runs_as_saved(name, tiny_model_dir, small_calibration, tmp_path):
    from compsec.audit.backend import LocalBackend
    from compsec.llmc.build import write_variant
    from compsec.llmc.ct_decode import decode_folder
    from compsec.models.io import load_model
    from compsec.models.linear import quantizable_weights

    recipe = RECIPES[name]
    write_variant(tiny_model_dir, recipe, small_calibration, tmp_path)
    decoded, loaded = decode_folder(tmp_path), _loaded_weights(tmp_path)
    names = [w.name for w in quantizable_weights(tiny_model_dir)]
    for weight in names:
        assert torch.equal(decoded[weight].weight, loaded[weight]), weight
        if recipe.nm:
            blocks = decoded[weight].weight.reshape(-1, 4)
            assert bool(((blocks == 0).sum(-1) >= 2).all()), weight
        elif name.endswith("-50"):
            assert abs(float((decoded[weight].weight == 0).float().mean()) - 0.5) < 0.01, weight
        else:
            assert decoded[weight].codes is not None, weight
    model, tokenizer = load_model(tmp_path)
    answer = LocalBackend(model, tokenizer, "cpu", 4, 8).generate(["What is the capital of France?"])[0]
    assert answer.text.strip()
