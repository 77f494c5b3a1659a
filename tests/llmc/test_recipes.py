"""Recipe shapes and the independent compressed-tensors decoder (against the real packer)."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.errors import InputError
from compsec.llmc.ct_decode import unpack_int32
from compsec.llmc.recipes import RECIPES, get_recipe, shape_problems


@settings(max_examples=60, deadline=None)
@given(bits=st.integers(2, 8), rows=st.integers(1, 5), columns=st.integers(1, 300), seed=st.integers(0, 99))
def test_unpack_inverts_compressed_tensors_packing(bits, rows, columns, seed):
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32

    half = 1 << (bits - 1)
    codes = torch.randint(-half, half, (rows, columns), generator=torch.Generator().manual_seed(seed))
    packed = pack_to_int32(codes.to(torch.int8), bits)
    assert torch.equal(unpack_int32(packed, bits, columns), codes)
    zero_packed = pack_to_int32(codes.T.contiguous().to(torch.int8), bits, packed_dim=0)  # down the columns
    assert torch.equal(unpack_int32(zero_packed.T.contiguous(), bits, columns).T, codes.T)


@given(widths=st.lists(st.integers(1, 4096), min_size=1, max_size=8))
def test_shape_problems_are_exactly_the_widths_a_group_or_block_does_not_divide(widths):
    shapes = {f"w{i}.weight": (7, width) for i, width in enumerate(widths)}
    for recipe in RECIPES.values():
        step = recipe.group_size or (recipe.nm[1] if recipe.nm else None)
        expected = {f"w{i}.weight" for i, width in enumerate(widths) if step and width % step}
        assert {line.split(":")[0] for line in shape_problems(recipe, shapes)} == expected


def _llama_192(folder, tokenizer_from=None):
    """A two-block Llama whose attention/gate/up inputs are 192 wide (not a multiple of 128) and whose
    down_proj input is 384 = 3 x 128, as SmolLM2's 576 / 1536; with ``tokenizer_from``'s tokenizer."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from) if tokenizer_from else None
    config = LlamaConfig(hidden_size=192, intermediate_size=384, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=len(tokenizer) if tokenizer else 64)
    LlamaForCausalLM(config).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def test_group_128_on_192_columns_ignores_those_layers_as_llm_compressor_says(tmp_path):
    from compsec.llmc.build import fit_to_shapes

    _llama_192(tmp_path)
    ignore = fit_to_shapes(tmp_path, get_recipe("gptq-w4a16")).modifiers["GPTQModifier"]["ignore"]
    assert ignore[0] == "lm_head" and len(ignore) == 7  # q, k, v, o, gate, up: one pattern each
    kept = [n for n in (f"model.layers.{i}.{m}" for i in (0, 1) for m in ("mlp.down_proj", "mlp.up_proj"))
            if not any(re.match(p.removeprefix("re:"), n) for p in ignore[1:])]
    assert kept == ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]
    assert fit_to_shapes(tmp_path, get_recipe("gptq-w4a16-g64")) == get_recipe("gptq-w4a16-g64")  # 192 = 3 x 64
    assert fit_to_shapes(tmp_path, get_recipe("sparsegpt-2:4")) == get_recipe("sparsegpt-2:4")


def test_nm_blocks_that_do_not_divide_are_refused_before_llm_compressor_runs(tmp_path, monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    from compsec.llmc import side_env
    from compsec.llmc.build import fit_to_shapes

    monkeypatch.setattr(side_env, "run_worker", lambda *a, **k: pytest.fail("llm-compressor was started"))
    config = LlamaConfig(hidden_size=66, intermediate_size=130, num_hidden_layers=1, num_attention_heads=1,
                         num_key_value_heads=1, vocab_size=64)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(InputError, match=r"sparsegpt-2:4 cannot compress .*66 input columns .*2:4 blocks"):
        fit_to_shapes(tmp_path, get_recipe("sparsegpt-2:4"))
    with pytest.raises(InputError, match="no weight's input width is a multiple of the group size 128"):
        fit_to_shapes(tmp_path, get_recipe("gptq-w4a16"))


@pytest.mark.slow
def test_llm_compressor_builds_group_128_on_192_columns_leaving_the_ignored_layers_as_they_were(tmp_path,
                                                                                                 tiny_model_dir):
    """The real oneshot accepts the ignore patterns: down_proj is int4 codes, the other Linears equal the source."""
    from safetensors.torch import load_file

    from compsec.llmc.build import write_variant
    from compsec.llmc.calibration import Calibration
    from compsec.llmc.ct_decode import decode_folder

    _llama_192(tmp_path / "src", tiny_model_dir)
    (tmp_path / "out").mkdir()
    write_variant(tmp_path / "src", get_recipe("gptq-w4a16"), Calibration(samples=2, max_length=16),
                  tmp_path / "out")
    source, decoded = load_file(tmp_path / "src" / "model.safetensors"), decode_folder(tmp_path / "out")
    assert sum(".down_proj." in name for name in decoded) == 2
    for name, weight in decoded.items():
        if ".down_proj." in name:
            assert weight.codes is not None and weight.codes.abs().max() <= 8, name
        else:
            assert weight.codes is None and torch.equal(weight.weight, source[name]), name


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(InputError, match="gptq-w4a16, gptq-w4a16-g64"):
        get_recipe("gptq-w3")
