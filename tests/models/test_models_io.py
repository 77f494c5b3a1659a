"""load_model / save_model on tiny random models: round trips, single files, pickle refusal, hostile input."""

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig

from compsec.errors import InputError
from compsec.models.io import load_model, save_model
from compsec.models.weights_check import checkpoint_findings

CONFIG = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 64, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 1}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG)).eval()


def same_weights(a, b) -> bool:
    left, right = a.state_dict(), b.state_dict()
    return left.keys() == right.keys() and all(torch.equal(left[k], right[k]) for k in left)


def test_folder_round_trip_with_metadata(tiny, tmp_path):
    save_model(tiny, None, tmp_path, metadata={"origin": "test"})
    assert json.loads((tmp_path / "compsec.json").read_text()) == {"origin": "test"}
    model, tokenizer = load_model(tmp_path)
    assert tokenizer is None and not model.training and same_weights(model, tiny)


def test_dtype_override(tiny, tmp_path):
    save_model(tiny, None, tmp_path)
    model, _ = load_model(tmp_path, dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16


def test_loads_stock_torch_layers_and_compares_shapes_on_meta(tiny, tmp_path):
    """transformers 5.25 swaps layers for Hub kernels on every load by default and refuses the meta device while
    doing so: compsec asks for no kernels, so it loads transformers' own layers and check compares shapes."""
    save_model(tiny, None, tmp_path)
    model, _ = load_model(tmp_path)
    assert getattr(model, "use_kernels", False) is False
    assert checkpoint_findings(tmp_path) == []


def test_metadata_must_be_strings(tiny, tmp_path):
    with pytest.raises(InputError, match="strings"):
        save_model(tiny, None, tmp_path, metadata={"step": 3})


def test_single_safetensors_file_with_sibling_config(tiny, tmp_path):
    save_model(tiny, None, tmp_path)
    lone = tmp_path / "renamed.safetensors"
    (tmp_path / "model.safetensors").rename(lone)
    model, _ = load_model(lone)
    assert same_weights(model, tiny)


def test_single_safetensors_file_without_config_says_what_to_provide(tiny, tmp_path):
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items() if k != "lm_head.weight"},
              str(tmp_path / "w.safetensors"))
    with pytest.raises(InputError, match="config.json") as info:
        load_model(tmp_path / "w.safetensors")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
def test_pickle_files_are_refused_by_default(suffix, tiny, tmp_path):
    path = tmp_path / f"weights{suffix}"
    torch.save(tiny.state_dict(), path)
    with pytest.raises(InputError, match="never unpickles"):
        load_model(path)


def test_folder_with_only_pytorch_model_bin_is_refused(tiny, tmp_path):
    tiny.config.to_json_file(tmp_path / "config.json")
    torch.save(tiny.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(InputError, match="convert them to safetensors"):
        load_model(tmp_path)
    model, _ = load_model(tmp_path, allow_pickle=True)
    assert same_weights(model, tiny)


class Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_never_runs_even_when_pickles_are_allowed(tiny, tmp_path):
    marker = tmp_path / "marker"
    tiny.config.to_json_file(tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Payload(marker)}))
    for allow in (False, True):
        with pytest.raises(InputError):
            load_model(tmp_path, allow_pickle=allow)
    assert not marker.exists()


def test_hostile_safetensors_in_folder_is_refused_before_transformers(tiny, tmp_path):
    save_model(tiny, None, tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.raises(InputError, match="model.safetensors: "):
        load_model(tmp_path)


def test_escaping_symlink_is_refused(tiny, tmp_path):
    folder = tmp_path / "model"
    save_model(tiny, None, folder)
    (tmp_path / "elsewhere.json").write_text("{}")
    (folder / "extra.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InputError, match="outside the model folder"):
        load_model(folder)


def test_missing_path_and_unknown_suffix(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_model(tmp_path / "nope")
    (tmp_path / "weights.onnx").write_bytes(b"x")
    with pytest.raises(InputError, match="unsupported"):
        load_model(tmp_path / "weights.onnx")
