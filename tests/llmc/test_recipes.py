"""Recipe shapes and the independent compressed-tensors decoder (against the real packer)."""

from __future__ import annotations

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


def test_group_128_on_576_columns_is_refused_before_llm_compressor_runs(tmp_path, monkeypatch):
    from transformers import LlamaConfig, LlamaForCausalLM

    from compsec.llmc import side_env
    from compsec.llmc.build import require_shapes

    monkeypatch.setattr(side_env, "run_worker", lambda *a, **k: pytest.fail("llm-compressor was started"))
    config = LlamaConfig(hidden_size=192, intermediate_size=384, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=4, vocab_size=64)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(InputError, match=r"gptq-w4a16 cannot compress .*192 input columns .*group size 128"):
        require_shapes(tmp_path, get_recipe("gptq-w4a16"))
    require_shapes(tmp_path, get_recipe("gptq-w4a16-g64"))  # 192 = 3 x 64
    require_shapes(tmp_path, get_recipe("sparsegpt-2:4"))


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(InputError, match="gptq-w4a16, gptq-w4a16-g64"):
        get_recipe("gptq-w3")
