"""Hostile and malformed safetensors files: each one is refused with a one-line InputError, fast."""

import json
import struct
import tracemalloc

import pytest
import torch
from safetensors.torch import save_file

from compsec.errors import InputError
from compsec.integrity import check_file
from compsec.integrity.safetensors_check import MAX_HEADER_BYTES, parse_header_bytes, read_header


def st_bytes(header, data: bytes, length: int | None = None, raw: bytes | None = None) -> bytes:
    """A safetensors file from a header dict (or raw header bytes), with an optional lying length."""
    body = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


GOOD = {"a": entry(), "b": entry("F16", (2, 2), (8, 16))}
DATA = bytes(16)

MALFORMED = {
    "empty file": b"",
    "shorter than length": b"\x05\x00\x00",
    "header length past end": st_bytes(GOOD, DATA, length=10_000),
    "header over 100 MB": st_bytes(GOOD, DATA, length=MAX_HEADER_BYTES + 1),
    "invalid json": st_bytes(None, DATA, raw=b'{"a": {"dtype": "F32",'),
    "invalid utf-8": st_bytes(None, DATA, raw=b'{"\xff\xfe": 1}'),
    "not an object": st_bytes(None, DATA, raw=b"[1, 2, 3]"),
    "duplicate top-level key": st_bytes(None, DATA, raw=(
        b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},'
        b' "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}')),
    "duplicate nested key": st_bytes(None, bytes(8), raw=(
        b'{"a": {"dtype": "F32", "dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}')),
    "NaN constant in json": st_bytes(None, bytes(8), raw=b'{"a": {"dtype": "F32", "shape": [NaN], '
                                                          b'"data_offsets": [0, 8]}}'),
    "overlapping offsets": st_bytes({"a": entry(offsets=(0, 8)), "b": entry(offsets=(4, 12))}, bytes(12)),
    "offsets out of bounds": st_bytes({"a": entry(offsets=(0, 8)), "b": entry(offsets=(8, 16))}, bytes(12)),
    "hole between tensors": st_bytes({"a": entry(offsets=(0, 8)), "b": entry(offsets=(12, 20))}, bytes(20)),
    "trailing bytes after tensors": st_bytes({"a": entry()}, bytes(12)),
    "dtype/shape mismatch": st_bytes({"a": entry("F32", (3,), (0, 8))}, bytes(8)),
    "unknown dtype": st_bytes({"a": entry("F128", (1,), (0, 16))}, bytes(16)),
    "negative dimension": st_bytes({"a": entry("F32", (-2,), (0, 8))}, bytes(8)),
    "boolean dimension": st_bytes(None, bytes(4), raw=b'{"a": {"dtype": "F32", "shape": [true], '
                                                      b'"data_offsets": [0, 4]}}'),
    "reversed offsets": st_bytes({"a": entry("F32", (0,), (8, 0))}, bytes(8)),
    "missing field": st_bytes({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)),
    "metadata not string": st_bytes({"__metadata__": {"k": 1}, "a": entry()}, bytes(8)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_refused_with_one_line(case, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(MALFORMED[case])
    tracemalloc.start()
    with pytest.raises(InputError) as info:
        check_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"a malformed header made the check allocate {peak} bytes"  # nothing decoded or inflated
    message = str(info.value)
    assert "\n" not in message and message.startswith("model.safetensors:")


def test_valid_handmade_file_passes_and_agrees_with_safetensors(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "ok.safetensors"
    path.write_bytes(st_bytes({"__metadata__": {"format": "pt"}, **GOOD}, DATA))
    assert set(read_header(path)) == {"__metadata__", "a", "b"}
    assert check_file(path) == []
    with safe_open(str(path), framework="pt") as handle:
        assert handle.get_tensor("b").shape == (2, 2)


def test_file_written_by_safetensors_passes(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {"w": torch.randn(5, 3), "h": torch.randn(4).half(), "i": torch.arange(3), "e": torch.zeros(0, 2)}
    save_file(tensors, str(path), metadata={"note": "x"})
    header = read_header(path)
    assert {k: v["shape"] for k, v in header.items() if k != "__metadata__"} == {
        "w": [5, 3], "h": [4], "i": [3], "e": [0, 2]}
    assert check_file(path) == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_values_are_an_error_finding(bad, tmp_path):
    path = tmp_path / "nan.safetensors"
    weights = torch.ones(4, 4)
    weights[2, 1] = bad
    save_file({"clean": torch.ones(3), "model.w": weights}, str(path))
    findings = check_file(path)
    assert [(f.tensor, f.kind, f.severity) for f in findings] == [("model.w", "nonfinite", "error")]
    assert check_file(path, scan_values=False) == []


def test_parse_header_bytes_matches_read_header(tmp_path):
    blob = st_bytes(GOOD, DATA)
    path = tmp_path / "x.safetensors"
    path.write_bytes(blob)
    assert parse_header_bytes(blob) == read_header(path)
