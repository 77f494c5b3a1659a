"""Provenance of K-quant GGUFs made by llama.cpp's own ``llama-quantize`` (``llama_model_quantize`` in libllama).

The source is a tiny random Llama whose rows are multiples of 256; it is written as an F32 GGUF the way the
converter writes it (tensor-name map, q/k rows permuted) and quantized to Q4_K_M by libllama, which picks Q4_K /
Q6_K per tensor itself: the mixture is llama.cpp's, not the test's."""

import ctypes

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file
from tiny_checkpoints import one_ulp_inside_box, rewrite_tensor

from compsec.cli.main import run
from compsec.integrity.gguf_provenance import CONSISTENT, _permute, gguf_provenance

CONFIG = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
          "num_key_value_heads": 2, "vocab_size": 64}
TARGET = "model.layers.0.mlp.up_proj.weight"
Q4_K_M, Q4_0 = 15, 2  # llama_ftype values (LLAMA_FTYPE_MOSTLY_Q4_K_M, LLAMA_FTYPE_MOSTLY_Q4_0)


def write_converted_gguf(source, path, imatrix: bool = False, half: bool = False):
    """The converter's output: 2-D weights in F32 (or F16 with ``half``, its --outtype f16), 1-D in F32."""
    from gguf import MODEL_ARCH, GGUFWriter, get_tensor_name_map

    names = get_tensor_name_map(MODEL_ARCH.LLAMA, CONFIG["num_hidden_layers"])
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(CONFIG["num_hidden_layers"])
    writer.add_head_count(CONFIG["num_attention_heads"])
    writer.add_head_count_kv(CONFIG["num_key_value_heads"])
    writer.add_embedding_length(CONFIG["hidden_size"])
    writer.add_feed_forward_length(CONFIG["intermediate_size"])
    writer.add_context_length(128)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_dimension_count(CONFIG["hidden_size"] // CONFIG["num_attention_heads"])
    writer.add_file_type(1 if half else 0)
    if imatrix:
        writer.add_string("quantize.imatrix.file", "imatrix.dat")
    for hf_name, w in load_file(str(source / "model.safetensors")).items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name.endswith(("attn_q.weight", "attn_k.weight")):
            w = _permute(w, CONFIG["num_attention_heads" if "attn_q" in name else "num_key_value_heads"])
        writer.add_tensor(name, (w.half() if half and w.dim() == 2 else w.float()).numpy())
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    return path


def llama_quantize(source, tmp_path, ftype: int = Q4_K_M, imatrix: bool = False, half: bool = False):
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype, params.nthread = ftype, 1
    converted, out = write_converted_gguf(source, tmp_path / "converted.gguf", imatrix, half), tmp_path / "q.gguf"
    assert llama_cpp.llama_model_quantize(str(converted).encode(), str(out).encode(), ctypes.byref(params)) == 0
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from compsec.models.io import save_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG)).eval()
    return save_model(model, None, tmp_path_factory.mktemp("k") / "model")


def test_llama_quantize_q4_k_m_is_a_q4_k_q6_k_mixture_and_faithful(source, tmp_path):
    from gguf.constants import GGMLQuantizationType

    from compsec.integrity.gguf_check import read_gguf_header

    gguf = llama_quantize(source, tmp_path)
    types = {GGMLQuantizationType(t[1]).name for t in read_gguf_header(gguf).tensors}
    assert {"Q4_K", "Q6_K"} <= types
    result = gguf_provenance(gguf, source)
    assert (result.verdict, result.differs, result.unchecked, result.checked) == ("faithful", [], [], 12)


@pytest.mark.parametrize(("ftype", "expected"), [(Q4_0, {"Q4_0", "Q6_K"}), (10, {"Q2_K", "Q3_K", "Q6_K"}),
                                              (12, {"Q3_K", "Q4_K", "Q5_K"}), (17, {"Q5_K", "Q6_K"}), (18, {"Q6_K"})])
def test_other_llama_quantize_mixtures_are_faithful(source, tmp_path, ftype, expected):
    """Q4_0, Q2_K, Q3_K_M, Q5_K_M, Q6_K (llama_ftype 2, 10, 12, 17, 18): whatever types llama.cpp picks."""
    from gguf.constants import GGMLQuantizationType

    from compsec.integrity.gguf_check import read_gguf_header

    gguf = llama_quantize(source, tmp_path, ftype)
    assert expected <= {GGMLQuantizationType(t[1]).name for t in read_gguf_header(gguf).tensors}
    assert gguf_provenance(gguf, source).verdict == "faithful"


def test_source_tampered_beyond_a_step_is_not_derived_naming_the_tensor(source, tmp_path, capsys):
    gguf = llama_quantize(source, tmp_path)

    def tamper(w):
        w[3, 7] += 0.5
        return w

    rewrite_tensor(source, tmp_path / "src", TARGET, tamper)
    result = gguf_provenance(gguf, tmp_path / "src")
    assert result.verdict == "not derived"
    assert result.differs == ["blk.0.ffn_up.weight: Q4_K differs from the re-quantized source (1 of 512 blocks)"]
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 1
    assert "blk.0.ffn_up.weight" in capsys.readouterr().out


def test_change_inside_the_q4_k_box_gives_the_same_bytes_and_is_faithful(source, tmp_path, capsys):
    gguf = llama_quantize(source, tmp_path)

    def nudge(w):
        one_ulp_inside_box(w[:1], "q4_k")
        return w

    changed = rewrite_tensor(source, tmp_path / "src", TARGET, nudge)
    assert not torch.equal(changed, load_file(str(source / "model.safetensors"))[TARGET])
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 0
    assert "inside its quantization box" in capsys.readouterr().out


def test_importance_matrix_gets_the_bounds_check(source, tmp_path, capsys):
    """With an importance matrix the scales are not re-derived, but every code must be the source's under them."""
    gguf = llama_quantize(source, tmp_path, imatrix=True)
    result = gguf_provenance(gguf, source)
    assert result.verdict == CONSISTENT and result.differs == [] and result.unchecked == [] and result.checked == 12
    assert run(["provenance", "verify", str(gguf), "--source", str(source)]) == 0
    assert "importance matrix" in capsys.readouterr().out
    rewrite_tensor(source, tmp_path / "src", TARGET, lambda w: w + 0.5 * w.abs().max())
    result = gguf_provenance(gguf, tmp_path / "src")
    assert result.verdict == "not derived" and [line.split(":")[0] for line in result.differs] == ["blk.0.ffn_up.weight"]
    assert run(["provenance", "verify", str(gguf), "--source", str(tmp_path / "src")]) == 1


def test_quantized_from_the_converters_f16_output_is_faithful_via_f16_only(source, tmp_path, capsys):
    gguf = llama_quantize(source, tmp_path, half=True)
    assert gguf_provenance(gguf, source).verdict == "not derived"  # the float32 source itself does not give it
    result = gguf_provenance(gguf, source, via="f16")
    assert (result.verdict, result.differs, result.unchecked) == ("faithful", [], [])
    assert run(["provenance", "verify", str(gguf), "--source", str(source), "--via", "f16"]) == 0
    assert run(["provenance", "verify", str(gguf), "--source", str(source), "--via", "f8"]) == 2
    assert run(["provenance", "verify", str(source), "--source", str(source), "--via", "f16"]) == 2


@settings(max_examples=25, deadline=None)
@given(qtype=st.sampled_from(["Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"]), rows=st.integers(1, 4),
       blocks=st.integers(1, 3), seed=st.integers(0, 2**16), scale=st.floats(1e-3, 10.0))
def test_super_blocks_of_the_source_match_and_an_outlier_changes_exactly_its_own(qtype, rows, blocks, seed, scale):
    from compsec.formats.gguf_k_lib import quantize_rows
    from compsec.integrity.gguf_provenance import _differing_super_blocks

    w = torch.randn(rows, 256 * blocks, generator=torch.Generator().manual_seed(seed)) * scale
    raw = quantize_rows(w, qtype)
    assert _differing_super_blocks(raw, qtype, w) == 0
    w[rows - 1, -1] = 10 * w.abs().max()
    assert _differing_super_blocks(raw, qtype, w) == 1
