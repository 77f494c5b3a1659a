"""Provenance of a legacy-type GGUF: re-quantize the source with compsec's registry formats and compare.

The GGUF files are written the way llama.cpp's converter writes them (gguf's tensor-name map, q/k rows
permuted, blocks from the ``gguf`` package's own numpy quantizer), independently of compsec's torch code."""

import pytest
import torch
from safetensors.torch import load_file
from tiny_checkpoints import (
    CONFIG,
    TARGET,
    one_ulp_inside_box,
    past_box_edge,
    rewrite_tensor,
    save_tiny_llama,
)

from compsec.cli.main import run
from compsec.integrity.gguf_provenance import _permute, gguf_provenance


def write_gguf(source, path, qtype: str = "Q4_0"):
    from gguf import MODEL_ARCH, GGMLQuantizationType, GGUFWriter, get_tensor_name_map, quants

    kind = GGMLQuantizationType[qtype]
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, CONFIG["num_hidden_layers"])
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(CONFIG["num_hidden_layers"])
    writer.add_head_count(CONFIG["num_attention_heads"])
    writer.add_head_count_kv(CONFIG["num_key_value_heads"])
    for hf_name, w in load_file(str(source / "model.safetensors")).items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            heads = CONFIG["num_attention_heads"] if "attn_q" in name else CONFIG["num_key_value_heads"]
            w = _permute(w, heads)
        array = w.float().numpy()
        if array.ndim == 2:
            writer.add_tensor(name, quants.quantize(array, kind), raw_dtype=kind)
        else:
            writer.add_tensor(name, array)
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.mark.parametrize("qtype", ["Q4_0", "Q8_0", "Q5_1"])
def test_faithful_gguf_is_faithful(tiny, tmp_path, qtype):
    result = gguf_provenance(write_gguf(tiny, tmp_path / "m.gguf", qtype), tiny)
    assert (result.verdict, result.differs, result.unchecked) == ("faithful", [], [])
    assert result.checked == len(load_file(str(tiny / "model.safetensors")))


def test_tampered_source_is_not_derived_naming_the_tensor(tiny, tmp_path, capsys):
    gguf = write_gguf(tiny, tmp_path / "m.gguf")
    rewrite_tensor(tiny, tmp_path / "src", TARGET, lambda w: past_box_edge(w, "q4_0"))
    result = gguf_provenance(gguf, tmp_path / "src")
    assert result.verdict == "not derived"
    assert result.differs == ["blk.0.ffn_up.weight: Q4_0 differs from the re-quantized source (1 of 256 blocks)"]
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 1
    assert "not derived" in capsys.readouterr().out


def test_change_inside_the_box_gives_the_same_bytes_and_is_faithful(tiny, tmp_path, capsys):
    gguf = write_gguf(tiny, tmp_path / "m.gguf")
    changed = rewrite_tensor(tiny, tmp_path / "src", TARGET, lambda w: one_ulp_inside_box(w, "q4_0"))
    assert not torch.equal(changed, load_file(str(tiny / "model.safetensors"))[TARGET])
    assert gguf_provenance(gguf, tmp_path / "src").verdict == "faithful"
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 0
    assert "inside its quantization box" in capsys.readouterr().out


def test_without_the_converters_permutation_q_and_k_would_not_match(tiny, tmp_path, monkeypatch):
    from compsec.integrity import gguf_provenance as module

    gguf = write_gguf(tiny, tmp_path / "m.gguf")
    monkeypatch.setattr(module, "PERMUTED", {})
    differs = [line.split(":")[0] for line in gguf_provenance(gguf, tiny).differs]
    assert sorted(differs) == ["blk.0.attn_k.weight", "blk.0.attn_q.weight"]


def test_tensor_missing_from_the_source_cannot_tell(tiny, tmp_path):
    gguf = write_gguf(tiny, tmp_path / "m.gguf")
    rewrite_tensor(tiny, tmp_path / "src", TARGET, lambda w: w)
    tensors = load_file(str(tmp_path / "src" / "model.safetensors"))
    del tensors[TARGET]
    from safetensors.torch import save_file

    save_file(tensors, str(tmp_path / "src" / "model.safetensors"))
    result = gguf_provenance(gguf, tmp_path / "src")
    assert (result.verdict, result.unchecked) == ("cannot tell", ["blk.0.ffn_up.weight: not in the source"])
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 1


def test_source_without_weights_is_an_input_error(tiny, tmp_path):
    gguf = write_gguf(tiny, tmp_path / "m.gguf")
    (tmp_path / "empty").mkdir()
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "empty")]) == 2
