"""Bounded fuzzing: random or mutated bytes never make the parsers raise anything but InputError."""

import json
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compsec.errors import InputError
from compsec.integrity.gguf_check import read_gguf_header
from compsec.integrity.safetensors_check import parse_header_bytes

HEADER = {"__metadata__": {"format": "pt"},
          "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
          "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}
_BODY = json.dumps(HEADER).encode()
VALID = struct.pack("<Q", len(_BODY)) + _BODY + bytes(22)
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parses_or_input_error(blob: bytes) -> None:
    try:
        parse_header_bytes(blob)
    except InputError as err:
        assert "\n" not in str(err)


def test_valid_seed_parses():
    assert set(parse_header_bytes(VALID)) == set(HEADER)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(blob):
    _parses_or_input_error(blob)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, len(VALID)))
def test_mutated_valid_file(edits, cut):
    blob = bytearray(VALID)
    for position, value in edits:
        blob[position] = value
    _parses_or_input_error(bytes(blob[: max(cut, 1) if cut < len(VALID) else len(VALID)]))


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
                    max_leaves=12),
       st.integers(0, 64))
def test_random_json_headers(header, data_len):
    body = json.dumps(header).encode()
    _parses_or_input_error(struct.pack("<Q", len(body)) + body + bytes(data_len))


def _gguf_seed() -> bytes:
    key, template = b"tokenizer.chat_template", b"{{ messages }}"
    out = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    out += struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(template)) + template
    out += struct.pack("<Q", 1) + b"w" + struct.pack("<IQIQ", 1, 8, 0, 0)
    return out + bytes(-len(out) % 32) + bytes(32)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=5), st.integers(1, 200))
def test_mutated_gguf(edits, cut):
    blob = bytearray(_gguf_seed())
    for position, value in edits:
        blob[position % len(blob)] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "f.gguf"
        path.write_bytes(bytes(blob[: min(cut, len(blob))]) if cut < 100 else bytes(blob))
        try:
            read_gguf_header(path)
        except InputError as err:
            assert "\n" not in str(err)


def test_gguf_seed_parses(tmp_path):
    (tmp_path / "seed.gguf").write_bytes(_gguf_seed())
    assert read_gguf_header(tmp_path / "seed.gguf").metadata["tokenizer.chat_template"] == "{{ messages }}"
