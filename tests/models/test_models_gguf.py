"""GGUF → fp32 HF model → safetensors folder, on a tiny handmade llama GGUF (no downloads, no tokenizer)."""

import json

import numpy as np
import pytest
import torch

from compsec.errors import InputError
from compsec.models.io import load_model, save_model

SHAPES = {"token_embd.weight": (64, 16), "output_norm.weight": (16,), "output.weight": (64, 16),
          "blk.0.attn_norm.weight": (16,), "blk.0.ffn_norm.weight": (16,), "blk.0.attn_q.weight": (16, 16),
          "blk.0.attn_k.weight": (8, 16), "blk.0.attn_v.weight": (8, 16), "blk.0.attn_output.weight": (16, 16),
          "blk.0.ffn_gate.weight": (32, 16), "blk.0.ffn_up.weight": (32, 16), "blk.0.ffn_down.weight": (16, 32)}


def write_tiny_llama_gguf(path, template=None, change=None) -> dict:
    """A 1-block llama GGUF of random F32 tensors (``change(tensors)`` may edit them first); returns them."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), "llama")
    for add, value in (("block_count", 1), ("context_length", 64), ("embedding_length", 16),
                       ("feed_forward_length", 32), ("head_count", 4), ("head_count_kv", 2),
                       ("layer_norm_rms_eps", 1e-5), ("vocab_size", 64), ("rope_dimension_count", 4)):
        getattr(writer, f"add_{add}")(value)
    if template:
        writer.add_chat_template(template)
    rng = np.random.default_rng(0)
    tensors = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in SHAPES.items()}
    tensors = change(tensors) if change else tensors
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    return tensors


def test_gguf_loads_dequantized_and_saves_as_plain_safetensors(tmp_path):
    tensors = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    model, tokenizer = load_model(tmp_path / "tiny.gguf")
    assert tokenizer is None and model.hf_quantizer is not None  # transformers marks GGUF models quantized
    down = model.model.layers[0].mlp.down_proj.weight
    assert down.dtype == torch.float32 and np.array_equal(down.detach().numpy(), tensors["blk.0.ffn_down.weight"])
    save_model(model, None, tmp_path / "out")
    assert "quantization_config" not in json.loads((tmp_path / "out" / "config.json").read_text())
    reloaded, _ = load_model(tmp_path / "out")
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), model.state_dict().values()))


def test_gguf_with_injected_template_is_refused_before_loading(tmp_path):
    write_tiny_llama_gguf(tmp_path / "evil.gguf", "{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    with pytest.raises(InputError, match="template injection"):
        load_model(tmp_path / "evil.gguf")


def _poisoned(tensors: dict) -> dict:
    tensors["blk.0.ffn_up.weight"][3, :2] = (np.nan, np.inf)
    return tensors


def _without_up(tensors: dict) -> dict:
    return {name: value for name, value in tensors.items() if name != "blk.0.ffn_up.weight"}


@pytest.mark.parametrize(("change", "words"), [(_poisoned, "NaN/Inf weights in 1 tensor"),
                                               (_without_up, "1 tensor of the config missing")])
def test_gguf_with_bad_weights_is_refused_naming_the_tensor(change, words, tmp_path):
    write_tiny_llama_gguf(tmp_path / "bad.gguf", change=change)
    with pytest.raises(InputError, match=words) as info:
        load_model(tmp_path / "bad.gguf")
    assert "model.layers.0.mlp.up_proj.weight" in str(info.value) and "\n" not in str(info.value)
