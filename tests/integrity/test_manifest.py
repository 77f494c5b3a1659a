"""Manifests: in-toto layout, per-tensor digests (safetensors and GGUF), verification naming every change."""

import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from tiny_checkpoints import TARGET, one_ulp_inside_box, rewrite_tensor, save_tiny_llama

from compsec.errors import InputError
from compsec.integrity.digests import gguf_tensor_digests, safetensors_tensor_digests, torch_tensor_digest
from compsec.integrity.manifest import (
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    check_manifest,
    content_digest,
    create_manifest,
    load_manifest,
    write_manifest,
)
from compsec.integrity.manifest_verify import verify_manifest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def lines(changes):
    return [change.line() for change in changes]


def test_statement_layout_and_file_digests(tiny):
    manifest = create_manifest(tiny)
    assert manifest["_type"] == STATEMENT_TYPE and manifest["predicateType"] == PREDICATE_TYPE
    names = [item["name"] for item in manifest["subject"]]
    assert names == sorted(p.name for p in tiny.iterdir())
    for item in manifest["subject"]:
        assert item["digest"]["sha256"] == hashlib.sha256((tiny / item["name"]).read_bytes()).hexdigest()
    tensors = manifest["predicate"]["files"]["model.safetensors"]["tensors"]
    assert tensors[TARGET]["shape"] == [128, 64] and tensors[TARGET]["dtype"] == "F32"
    assert "tensors" not in manifest["predicate"]["files"]["config.json"]


def test_unchanged_model_verifies(tiny, tmp_path):
    manifest = write_manifest(tiny, tmp_path / "manifest.json")
    assert load_manifest(tmp_path / "manifest.json") == manifest
    assert verify_manifest(tiny, manifest) == []


def test_one_ulp_change_names_the_file_and_the_tensor(tiny, tmp_path):
    manifest = create_manifest(tiny)
    rewrite_tensor(tiny, tmp_path / "m", TARGET, one_ulp_inside_box)
    assert lines(verify_manifest(tmp_path / "m", manifest)) == [
        "changed file model.safetensors", f"changed tensor model.safetensors: {TARGET}"]


def test_missing_extra_and_renamed_tensors(tiny, tmp_path):
    manifest = create_manifest(tiny)
    rewrite_tensor(tiny, tmp_path / "m", TARGET, lambda w: w.to(torch.float16))
    (tmp_path / "m" / "generation_config.json").unlink()
    (tmp_path / "m" / "notes.txt").write_text("hello")
    found = lines(verify_manifest(tmp_path / "m", manifest))
    assert found == ["missing file generation_config.json", "changed file model.safetensors",
                     f"changed tensor model.safetensors: {TARGET} (F32[128, 64] -> F16[128, 64])",
                     "extra file notes.txt"]


def test_metadata_only_change_is_reported_as_header_change(tiny, tmp_path):
    from safetensors.torch import load_file

    manifest = create_manifest(tiny)
    (tmp_path / "m").mkdir()
    for name in ("config.json", "generation_config.json"):
        (tmp_path / "m" / name).write_bytes((tiny / name).read_bytes())
    save_file(load_file(str(tiny / "model.safetensors")), str(tmp_path / "m" / "model.safetensors"),
              metadata={"format": "pt", "note": "x"})
    assert lines(verify_manifest(tmp_path / "m", manifest)) == [
        "changed file model.safetensors (tensors identical; header or metadata changed)"]


def test_truncated_file_is_a_change_not_a_crash(tiny, tmp_path):
    manifest = create_manifest(tiny)
    rewrite_tensor(tiny, tmp_path / "m", TARGET, lambda w: w)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])
    [change] = verify_manifest(tmp_path / "m", manifest)
    assert change.change == "changed" and "unreadable" in change.detail


def test_gguf_tensor_digests_match_the_gguf_reader(tmp_path):
    from gguf import GGUFReader, GGUFWriter

    path = tmp_path / "t.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_tensor("a", np.arange(64, dtype=np.float32).reshape(2, 32))
    writer.add_tensor("b", np.ones(32, dtype=np.float16))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    digests = gguf_tensor_digests(path)
    for tensor in GGUFReader(str(path)).tensors:
        shape = ",".join(str(int(d)) for d in reversed(tensor.shape))
        prefix = b"\0".join([b"compsec-tensor-v1", tensor.tensor_type.name.encode(), shape.encode()]) + b"\0"
        assert digests[tensor.name].sha256 == hashlib.sha256(prefix + tensor.data.tobytes()).hexdigest()
    assert digests["a"].shape == (2, 32) and digests["b"].dtype == "F16"
    manifest = create_manifest(path)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1  # last byte of tensor "b"'s data
    path.write_bytes(bytes(raw))
    assert lines(verify_manifest(path, manifest)) == ["changed file t.gguf", "changed tensor t.gguf: b"]


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
       dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16, torch.int8, torch.int64, torch.bool]))
def test_in_memory_digest_equals_file_digest(shape, dtype):
    tensor = (torch.randn(shape) * 50).to(dtype)
    with tempfile.TemporaryDirectory() as folder:
        save_file({"t": tensor}, f"{folder}/x.safetensors")
        assert safetensors_tensor_digests(Path(folder) / "x.safetensors")["t"] == torch_tensor_digest(tensor)


def test_digest_depends_on_dtype_and_shape_not_only_bytes():
    flat = torch.zeros(4, dtype=torch.int32)
    digests = {torch_tensor_digest(flat).sha256, torch_tensor_digest(flat.reshape(2, 2)).sha256,
               torch_tensor_digest(flat.view(torch.float32)).sha256}
    assert len(digests) == 3


def test_content_digest_ignores_formatting_and_tool_version(tiny):
    manifest = create_manifest(tiny)
    other = json.loads(json.dumps(manifest, indent=7))
    other["predicate"]["tool"]["version"] = "9.9"
    assert content_digest(other) == content_digest(manifest)
    other["predicate"]["files"]["model.safetensors"]["tensors"][TARGET]["sha256"] = "0" * 64
    assert content_digest(other) != content_digest(manifest)


def test_symlink_out_of_the_folder_is_refused(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "m", TARGET, lambda w: w)
    (tmp_path / "secret").write_text("x")
    (tmp_path / "m" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(InputError, match="outside"):
        create_manifest(tmp_path / "m")


@pytest.mark.parametrize("text", ["not json", "[]", json.dumps({"_type": STATEMENT_TYPE}),
                                  json.dumps({"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE,
                                              "subject": [{"name": 1}], "predicate": {"files": {}}})])
def test_malformed_manifest_is_an_input_error(tmp_path, text):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(InputError, match="manifest"):
        load_manifest(tmp_path / "m.json")


def test_check_manifest_accepts_what_create_writes(tiny):
    check_manifest(create_manifest(tiny))


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_any_flipped_data_byte_is_pinned_to_its_tensor(data):
    sizes = data.draw(st.lists(st.integers(1, 40), min_size=1, max_size=4))
    tensors = {f"t{i}": torch.arange(n, dtype=torch.float32) for i, n in enumerate(sizes)}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.safetensors"
        save_file(tensors, str(path))
        manifest = create_manifest(path)
        raw = bytearray(path.read_bytes())
        data_start = 8 + int.from_bytes(raw[:8], "little")
        position = data.draw(st.integers(data_start, len(raw) - 1))
        raw[position] ^= 1 << data.draw(st.integers(0, 7))
        path.write_bytes(bytes(raw))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            owner = next(name for name in tensors if not torch.equal(handle.get_tensor(name), tensors[name]))
        assert lines(verify_manifest(path, manifest)) == ["changed file x.safetensors",
                                                          f"changed tensor x.safetensors: {owner}"]


def _valid_safetensors_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        save_file({"a": torch.ones(3, 2), "b": torch.zeros(4, dtype=torch.int8)}, f"{folder}/v.safetensors")
        return (Path(folder) / "v.safetensors").read_bytes()


@settings(max_examples=60, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 150), st.integers(0, 255)), min_size=1, max_size=4),
       cut=st.integers(0, 200))
def test_mutated_files_give_an_input_error_or_a_manifest(edits, cut):
    blob = bytearray(_valid_safetensors_bytes())
    for position, value in edits:
        blob[position % len(blob)] = value
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".safetensors", ".gguf"):
            path = Path(folder) / f"x{suffix}"
            path.write_bytes(bytes(blob[: len(blob) - cut % len(blob)]))
            try:
                check_manifest(create_manifest(path))
            except InputError:
                pass
