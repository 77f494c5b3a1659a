"""Provenance of bitsandbytes-serialized folders: transformers' ``load_in_4bit`` / ``load_in_8bit`` +
``save_pretrained`` write them (the real path users take), compsec re-quantizes the source with the deployed
layers and compares every block."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from tiny_checkpoints import TARGET, one_ulp_inside_box, past_box_edge, rewrite_tensor, save_tiny_llama

from compsec.cli.main import run
from compsec.integrity.bnb_provenance import bnb_provenance

CONFIGS = {
    "nf4-double": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
    "fp4": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"},
    "int8": {"load_in_8bit": True},
}
BOX = {"nf4-double": "nf4", "fp4": "fp4", "int8": "int8"}


def serialize(source, out, kind: str, dtype=None):
    """What a user downloads: the source loaded quantized by transformers and saved with save_pretrained."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=BitsAndBytesConfig(**CONFIGS[kind]),
                                                 device_map="cpu", dtype=dtype)
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def folders(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("bnb")
    return {kind: serialize(tiny, root / kind, kind) for kind in CONFIGS}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_faithful_folder_is_faithful(tiny, folders, kind, capsys):
    result = bnb_provenance(folders[kind], tiny)
    assert (result.verdict, result.differs, result.unchecked) == ("faithful", [], [])
    assert result.checked == len(load_file(str(tiny / "model.safetensors")))
    assert run(["provenance", "verify", str(folders[kind]), "--source", str(tiny)]) == 0
    assert "faithful" in capsys.readouterr().out


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_source_changed_past_a_box_edge_is_not_derived_naming_the_tensor(tiny, folders, kind, tmp_path, capsys):
    rewrite_tensor(tiny, tmp_path / "src", TARGET, lambda w: past_box_edge(w, BOX[kind]))
    result = bnb_provenance(folders[kind], tmp_path / "src")
    unit = "rows" if kind == "int8" else "blocks"
    assert result.verdict == "not derived"
    assert len(result.differs) == 1 and result.differs[0].startswith(TARGET)
    assert f"(1 of {128 if kind == 'int8' else 64 * 128 // 64} {unit})" in result.differs[0]
    assert run(["provenance", "verify", str(folders[kind]), "--source", str(tmp_path / "src")]) == 1
    assert "not derived" in capsys.readouterr().out


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_change_inside_the_box_gives_the_same_bytes_and_is_faithful(tiny, folders, kind, tmp_path, capsys):
    changed = rewrite_tensor(tiny, tmp_path / "src", TARGET, lambda w: one_ulp_inside_box(w, BOX[kind]))
    assert not torch.equal(changed, load_file(str(tiny / "model.safetensors"))[TARGET])
    assert bnb_provenance(folders[kind], tmp_path / "src").verdict == "faithful"
    assert run(["provenance", "verify", str(folders[kind]), "--source", str(tmp_path / "src")]) == 0
    assert "inside its quantization box" in capsys.readouterr().out


def test_a_tampered_quantized_file_is_not_derived(tiny, folders, tmp_path):
    import shutil

    folder = shutil.copytree(folders["nf4-double"], tmp_path / "q")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors[TARGET].view(-1)[100] ^= 0x11  # two codes of one block
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    result = bnb_provenance(folder, tiny)
    assert result.verdict == "not derived" and result.differs == [
        f"{TARGET}: bitsandbytes 4bit differs from the re-quantized source (1 of 128 blocks)"]


def test_another_model_is_not_derived_in_every_tensor(folders, tmp_path):
    other = save_tiny_llama(tmp_path / "other", seed=1)
    result = bnb_provenance(folders["int8"], other)
    assert result.verdict == "not derived"
    differ = {line.split(":")[0] for line in result.differs}
    assert differ == {k for k in load_file(str(other / "model.safetensors")) if "norm" not in k}  # norms: all 1


def test_bf16_loaded_folder_is_rederived_in_the_recorded_dtype(tiny, tmp_path):
    folder = serialize(tiny, tmp_path / "bf16", "nf4-double", dtype=torch.bfloat16)
    state = next(k for k in load_file(str(folder / "model.safetensors")) if "quant_state" in k)
    assert '"dtype": "bfloat16"' in bytes(load_file(str(folder / "model.safetensors"))[state].numpy()).decode()
    assert bnb_provenance(folder, tiny).verdict == "faithful"


def test_source_missing_a_tensor_cannot_tell(tiny, folders, tmp_path):
    tensors = load_file(str(tiny / "model.safetensors"))
    (tmp_path / "src").mkdir()
    save_file({k: v for k, v in tensors.items() if k != TARGET}, str(tmp_path / "src" / "model.safetensors"))
    result = bnb_provenance(folders["fp4"], tmp_path / "src")
    assert result.verdict == "cannot tell" and result.unchecked == [f"{TARGET}: not in the source"]


def test_damaged_quant_state_is_one_line_exit_2(tiny, folders, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(folders["nf4-double"], tmp_path / "q")
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(k for k in tensors if k.startswith(TARGET) and "quant_state" in k)
    tensors[key] = torch.frombuffer(bytearray(b'{"quant_type": 1'), dtype=torch.uint8)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    assert run(["provenance", "verify", str(folder), "--source", str(tiny)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "Traceback" not in err


def test_uncovered_quant_method_cannot_tell_and_never_faithful(tiny, folders, tmp_path, capsys):
    import shutil

    folder = shutil.copytree(folders["int8"], tmp_path / "q")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"]["quant_method"] = "mystery"
    (folder / "config.json").write_text(json.dumps(config))
    assert run(["provenance", "verify", str(folder), "--source", str(tiny)]) == 1
    assert "cannot tell" in capsys.readouterr().out


@settings(max_examples=12, deadline=None)
@given(rows=st.integers(1, 6), blocks=st.integers(1, 4), seed=st.integers(0, 2**16),
       quant_type=st.sampled_from(["nf4", "fp4"]), double=st.booleans())
def test_rederiving_a_linear4bit_finds_exactly_the_block_moved_past_its_edge(rows, blocks, seed, quant_type, double):
    """Any weight: the serialized Params4bit equals the re-derivation; one element pushed past its box edge
    changes exactly its own block."""
    from compsec.formats.bnb_layers import linear4bit_weight
    from compsec.integrity.bnb_provenance import _differing_4bit

    w = torch.randn(rows, 64 * blocks, generator=torch.Generator().manual_seed(seed))
    weight = linear4bit_weight(w, quant_type, 64, double)
    stored = {"x.weight": weight.data, **{f"x.weight.{k}": v for k, v in weight.quant_state.as_dict(packed=True).items()}}
    assert _differing_4bit(stored, "x.weight", w) == (0, rows * blocks)
    moved = past_box_edge(w.clone(), quant_type)
    assert _differing_4bit(stored, "x.weight", moved) == (1, rows * blocks)


def test_a_changed_scale_that_only_the_double_quant_offset_records_is_found():
    """One block, double quant: its absmax code is 0 whatever the scale, and the scale lives in the JSON state's
    ``nested_offset``; raising the block's abs-max (every code unchanged) must still count as a differing block."""
    from compsec.formats.bnb_layers import linear4bit_weight
    from compsec.integrity.bnb_provenance import _differing_4bit

    w = torch.randn(1, 64, generator=torch.Generator().manual_seed(8902))
    weight = linear4bit_weight(w, "nf4", 64, True)
    stored = {"x.weight": weight.data, **{f"x.weight.{k}": v for k, v in weight.quant_state.as_dict(packed=True).items()}}
    scaled = w.clone()
    top = int(w.abs().argmax())
    scaled[0, top] = w[0, top] * 1.002  # the abs-max grows by 0.2 %: no code moves
    assert torch.equal(linear4bit_weight(scaled, "nf4", 64, True).data, weight.data)
    assert _differing_4bit(stored, "x.weight", w) == (0, 1)
    assert _differing_4bit(stored, "x.weight", scaled) == (1, 1)
