"""Tensor-level diff: statistics, and whether a change survives quantization (the attack's fingerprint)."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file
from tiny_checkpoints import TARGET, one_ulp_inside_box, past_box_edge, rewrite_tensor, save_tiny_llama

from compsec import formats
from compsec.errors import InputError
from compsec.integrity.diff import change_statistics, diff_models, same_after


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def test_identical_models(tiny):
    report = diff_models(tiny, tiny, formats.parse_list("nf4"))
    expected = f"identical: {report.n_compared} tensors, same names, dtypes, shapes and bits"
    assert report.identical and report.summary() == [expected]


def test_change_inside_the_nf4_box_is_invisible_after_nf4(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "b", TARGET, one_ulp_inside_box)
    report = diff_models(tiny, tmp_path / "b", formats.parse_list("nf4"))
    [change] = report.changed
    assert change.name == TARGET and change.same_after == {"nf4": True}
    assert change.frac_changed == pytest.approx(1 / (128 * 64)) and 0 < change.max_abs < 1e-6
    assert report.summary() == [f"1 of {report.n_compared} tensors changed; all changes invisible after nf4"]


def test_change_past_the_box_edge_is_visible(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "b", TARGET, past_box_edge)
    report = diff_models(tiny, tmp_path / "b", formats.parse_list("nf4"))
    assert report.changed[0].same_after == {"nf4": False}
    assert report.summary()[1:] == ["1 of 1 changed tensors still differ after nf4"]


def test_change_to_a_never_quantized_tensor_counts_as_visible(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "b", "model.norm.weight", lambda w: w + 1e-3)
    report = diff_models(tiny, tmp_path / "b", formats.parse_list("nf4,int8"))
    assert report.changed[0].same_after == {"nf4": None, "int8": None}
    assert report.summary() == [f"1 of {report.n_compared} tensors changed",
                                "1 of 1 changed tensors still differ after nf4",
                                "1 of 1 changed tensors still differ after int8"]
    assert report.as_json()["changed"][0]["name"] == "model.norm.weight"


def test_shape_change_and_missing_tensor(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "b", TARGET, lambda w: w[:64].contiguous())
    report = diff_models(tiny, tmp_path / "b", formats.parse_list("nf4"))
    assert report.changed[0].note == "shape [128, 64] -> [64, 64]"
    assert report.changed[0].same_after == {"nf4": False}
    tensors = load_file(str(tiny / "model.safetensors"))
    tensors["extra.weight"] = tensors.pop("model.norm.weight")
    save_file(tensors, str(tmp_path / "b" / "model.safetensors"))
    report = diff_models(tiny, tmp_path / "b", ())
    assert report.only_a == ["model.norm.weight"] and report.only_b == ["extra.weight"] and not report.changed
    assert report.summary()[1:] == ["1 tensors only in A", "1 tensors only in B"]


def test_gguf_is_refused_with_advice(tiny, tmp_path):
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    with pytest.raises(InputError, match="save_model"):
        diff_models(tmp_path / "x.gguf", tiny)


def test_statistics_on_a_known_pair():
    a = torch.tensor([1.0, -2.0, 0.0, 2.0])
    b = torch.tensor([1.0, -2.0, -0.0, 2.5])
    max_abs, rel, frac = change_statistics(a, b)
    assert max_abs == 0.5 and rel == pytest.approx(0.5 / 3) and frac == 0.5  # -0.0 counts as a change


def test_relative_norm_of_a_zero_reference():
    assert change_statistics(torch.zeros(3), torch.ones(3))[1] == math.inf
    assert change_statistics(torch.zeros(3), torch.zeros(3)) == (0.0, 0.0, 0.0)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.integers(1, 4))
def test_points_inside_the_box_always_quantize_the_same(seed, rows):
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, 64, generator=generator)
    box = formats.get("nf4").preimage(w)
    inside = box.lo + (box.hi - box.lo) * torch.rand(w.shape, generator=generator)
    assert same_after(formats.get("nf4"), w, inside) is True
    assert same_after(formats.get("nf4"), w, w + box.width.max() + 1.0) is False


def test_integer_tensors_are_not_quantized():
    assert same_after(formats.get("nf4"), torch.ones(64, dtype=torch.int32), torch.zeros(64, dtype=torch.int32)) \
        is None
