"""Streaming tensors from (sharded) safetensors without a model; header-only listings; GGUF listing."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from compsec.errors import InputError
from compsec.models.stream import gguf_tensor_infos, iter_tensors, tensor_infos


@pytest.fixture
def sharded(tmp_path):
    tensors = {f"layer.{i}.weight": torch.randn(8, 4 + i) for i in range(4)}
    tensors["norm.weight"] = torch.randn(4).bfloat16()
    first = {k: tensors[k] for k in list(tensors)[:2]}
    second = {k: tensors[k] for k in list(tensors)[2:]}
    save_file(first, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file(second, str(tmp_path / "model-00002-of-00002.safetensors"))
    weight_map = {k: "model-00001-of-00002.safetensors" for k in first}
    weight_map |= {k: "model-00002-of-00002.safetensors" for k in second}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return tmp_path, tensors


def test_iter_tensors_streams_every_shard(sharded):
    folder, tensors = sharded
    streamed = iter_tensors(folder)
    first_name, first_tensor = next(streamed)  # a generator: nothing else is read yet
    got = {first_name: first_tensor, **dict(streamed)}
    assert got.keys() == tensors.keys() and all(torch.equal(got[k], tensors[k]) for k in tensors)


def test_tensor_infos_from_headers(sharded):
    folder, tensors = sharded
    infos = {info.name: info for info in tensor_infos(folder)}
    assert {k: i.shape for k, i in infos.items()} == {k: tuple(t.shape) for k, t in tensors.items()}
    assert infos["norm.weight"].dtype == "BF16" and infos["layer.0.weight"].dtype == "F32"
    assert infos["layer.3.weight"].file.endswith("model-00002-of-00002.safetensors")


def test_index_pointing_outside_the_folder_is_refused(sharded):
    folder, _ = sharded
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../x.safetensors"}}))
    with pytest.raises(InputError, match="outside the folder"):
        list(iter_tensors(folder))


def test_folder_without_safetensors(tmp_path):
    with pytest.raises(InputError, match="no .safetensors"):
        tensor_infos(tmp_path)


def test_gguf_listing(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "t.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("blk.0.attn_q.weight", np.ones((6, 32), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(32, dtype=np.float16))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    infos = gguf_tensor_infos(path)
    assert [(i.name, i.dtype, i.shape) for i in infos] == [
        ("blk.0.attn_q.weight", "F32", (6, 32)), ("output_norm.weight", "F16", (32,))]
