"""Provenance: records embedded in safetensors metadata + sidecar, and verification with re-derivation."""

import json
import shutil

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tiny_checkpoints import TARGET, save_tiny_llama

from compsec import formats
from compsec.errors import InputError
from compsec.integrity.provenance import METADATA_KEY, SIDECAR_NAME, ProvenanceRecord, record_provenance
from compsec.integrity.provenance_verify import read_provenance, verify_provenance
from compsec.integrity.safetensors_metadata import read_metadata, set_metadata


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def transformed_copy(src, dst, change):
    """``dst`` = ``src`` with ``change(name, tensor)`` applied to every tensor (written by the test itself)."""
    shutil.copytree(src, dst)
    tensors = load_file(str(src / "model.safetensors"))
    save_file({n: change(n, w) for n, w in tensors.items()}, str(dst / "model.safetensors"), {"format": "pt"})
    return dst


def simulate(fmt_name):
    fmt = formats.get(fmt_name)
    return lambda name, w: fmt.dequantize(fmt.quantize(w)).to(w.dtype) if name.endswith("proj.weight") else w


def test_quantize_sim_verifies_by_re_derivation(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", simulate("nf4"))
    record = record_provenance(out, tiny, "quantize-sim", {"format": "nf4"}, seed=7)
    check = verify_provenance(out, tiny)
    assert check.verified and check.record == record and record.seed == 7
    assert check.notes == [f"re-derived {len(record.output_tensor_digests)} tensors by re-applying quantize-sim"]


def test_record_is_embedded_and_tensors_are_untouched(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", lambda n, w: w)
    before = load_file(str(out / "model.safetensors"))
    record = record_provenance(out, tiny, "copy", created=False)
    with safe_open(str(out / "model.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata["format"] == "pt" and ProvenanceRecord.from_json(metadata[METADATA_KEY]) == record
    assert json.loads((out / SIDECAR_NAME).read_text()) == json.loads(record.to_json())
    after = load_file(str(out / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert record.created is None and verify_provenance(out, tiny).verified


def test_claimed_format_that_was_not_used_is_a_mismatch(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", simulate("int8"))
    record_provenance(out, tiny, "quantize-sim", {"format": "nf4"})
    problems = verify_provenance(out, tiny).problems
    assert problems and all(p.startswith("re-derived quantize-sim output: tensor ") for p in problems)
    assert f"re-derived quantize-sim output: tensor {TARGET} differs" in problems


def test_tampering_after_recording_is_named(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", simulate("nf4"))
    record_provenance(out, tiny, "quantize-sim", {"format": "nf4"})
    weights = out / "model.safetensors"
    metadata, tensors = read_metadata(weights), load_file(str(weights))
    tensors[TARGET][0, 0] += 1.0
    save_file(tensors, str(weights), metadata)
    assert verify_provenance(out, tiny).problems[0] == (
        f"artifact changed since provenance was recorded: tensor {TARGET} differs")


def test_wrong_source_is_a_digest_mismatch(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", lambda n, w: w)
    record_provenance(out, tiny, "copy")
    other = transformed_copy(tiny, tmp_path / "other", lambda n, w: w * 2 if n == TARGET else w)
    assert verify_provenance(out, other).problems == [
        f"source digest mismatch: {other} is not the source this artifact was made from"]


def test_cast_re_derivation_matches_a_transformers_save(tiny, tmp_path):
    from compsec.models.io import load_model, save_model

    model, _ = load_model(tiny, dtype=torch.bfloat16)
    out = save_model(model, None, tmp_path / "bf16")
    record_provenance(out, tiny, "cast", {"dtype": "bfloat16"})
    assert verify_provenance(out, tiny).verified
    record_provenance(out, tiny, "cast", {"dtype": "float16"})
    assert verify_provenance(out, tiny).problems


def test_operations_that_cannot_be_re_derived_get_a_note(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", lambda n, w: w + 0.01 if n == TARGET else w)
    record_provenance(out, tiny, "harden", {"steps": 3}, seed=1)
    check = verify_provenance(out, tiny)
    assert check.verified and "cannot be re-derived" in check.notes[0]


def test_disagreeing_copies_no_record_and_damaged_records_are_errors(tiny, tmp_path):
    out = transformed_copy(tiny, tmp_path / "out", lambda n, w: w)
    with pytest.raises(InputError, match="no provenance record"):
        read_provenance(out)
    record_provenance(out, tiny, "copy", seed=1)
    forged = json.loads((out / SIDECAR_NAME).read_text()) | {"seed": 2}
    (out / SIDECAR_NAME).write_text(json.dumps(forged))
    with pytest.raises(InputError, match="differs from the others"):
        read_provenance(out)
    (out / SIDECAR_NAME).write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_provenance(out)
    with pytest.raises(InputError, match="JSON-serialisable"):
        record_provenance(out, tiny, "copy", {"x": object()})


@settings(max_examples=30, deadline=None)
@given(params=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8) | st.booleans(), max_size=4),
       seed=st.none() | st.integers(-2**40, 2**40), op=st.text(min_size=1, max_size=12))
def test_record_json_round_trip(params, seed, op):
    record = ProvenanceRecord("a" * 64, op, params, seed, {"w": "b" * 64}, created=None)
    assert ProvenanceRecord.from_json(record.to_json()) == record


def test_set_metadata_keeps_tensors_alignment_and_other_keys(tmp_path):
    path = tmp_path / "x.safetensors"
    tensors = {"a": torch.arange(5, dtype=torch.int16), "b": torch.randn(3, 7)}
    save_file(tensors, str(path), {"format": "pt"})
    set_metadata(path, "k", "ü" * 13)
    raw = path.read_bytes()
    assert int.from_bytes(raw[:8], "little") % 8 == 0
    assert read_metadata(path) == {"format": "pt", "k": "ü" * 13}
    reloaded = load_file(str(path))
    assert all(torch.equal(reloaded[k], tensors[k]) for k in tensors)
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]
