"""Malformed GGUF headers are refused before gguf's reader runs; chat templates are checked for injection."""

import struct
import tracemalloc

import numpy as np
import pytest

from compsec.errors import InputError
from compsec.integrity import check_file
from compsec.integrity.gguf_check import read_gguf_header

F32, Q8_0, STRING, UINT32 = 0, 8, 8, 4


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def gguf_bytes(kvs=(), tensors=None, data=None, version=3, magic=b"GGUF", n_tensors=None, n_kv=None):
    """A GGUF v3 file by hand: kvs = [(key, type, packed value)], tensors = [(name, dims, type, offset)]."""
    tensors = [("w", (4, 2), F32, 0)] if tensors is None else tensors
    data = np.arange(8, dtype=np.float32).tobytes() if data is None else data
    out = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                              len(kvs) if n_kv is None else n_kv)
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ggml_type, offset)
    return out + bytes(-len(out) % 32) + data


TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
KVS = [("general.architecture", STRING, gguf_string("llama")), ("tokenizer.chat_template", STRING, gguf_string(TEMPLATE))]

MALFORMED = {
    "bad magic": gguf_bytes(magic=b"GGML"),
    "version 1": gguf_bytes(version=1),
    "version 99": gguf_bytes(version=99),
    "absurd tensor count": gguf_bytes(n_tensors=2**40),
    "absurd kv count": gguf_bytes(n_kv=2**60),
    "truncated data": gguf_bytes()[:-5],
    "truncated header": gguf_bytes(KVS)[:40],
    "huge string length": gguf_bytes([("k", STRING, struct.pack("<Q", 2**62))]),
    "unknown value type": gguf_bytes([("k", 77, b"\x00" * 8)]),
    "array past end": gguf_bytes([("k", 9, struct.pack("<IQ", UINT32, 2**40))]),
    "invalid utf-8 key": gguf_bytes([(b"\xff\xfe", UINT32, struct.pack("<I", 1))]),
    "unknown ggml type": gguf_bytes(tensors=[("w", (4, 2), 1234, 0)]),
    "too many dims": gguf_bytes(tensors=[("w", (1,) * 9, F32, 0)]),
    "offset past end": gguf_bytes(tensors=[("w", (4, 2), F32, 4096)]),
    "misaligned offset": gguf_bytes(tensors=[("w", (2,), F32, 0), ("v", (2,), F32, 8)]),
    "overlapping tensors": gguf_bytes(tensors=[("w", (8,), F32, 0), ("v", (8,), F32, 0)], data=bytes(64)),
    "row not multiple of block": gguf_bytes(tensors=[("w", (7, 1), Q8_0, 0)], data=bytes(64)),
    "bad alignment": gguf_bytes([("general.alignment", UINT32, struct.pack("<I", 3))]),
}


def test_handmade_file_is_valid_for_the_real_reader(tmp_path):
    from gguf import GGUFReader

    path = tmp_path / "ok.gguf"
    path.write_bytes(gguf_bytes(KVS))
    summary = read_gguf_header(path)
    assert summary.metadata["general.architecture"] == "llama"
    assert summary.tensors[0][:3] == ("w", F32, (4, 2))
    reader = GGUFReader(str(path))
    assert reader.tensors[0].data_offset == summary.tensors[0][3]
    assert np.array_equal(reader.tensors[0].data.reshape(-1), np.arange(8, dtype=np.float32))
    assert check_file(path) == []


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_gguf_is_refused_with_one_line(case, tmp_path):
    path = tmp_path / "bad.gguf"
    path.write_bytes(MALFORMED[case])
    tracemalloc.start()
    with pytest.raises(InputError) as info:
        check_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"a malformed header made the check allocate {peak} bytes"  # nothing decoded or inflated
    assert "\n" not in str(info.value) and str(info.value).startswith("bad.gguf:")


def test_injection_template_in_gguf_is_an_error_finding(tmp_path):
    evil = "{{ cycler.__init__.__globals__.os.popen('touch pwned').read() }}"
    path = tmp_path / "evil.gguf"
    path.write_bytes(gguf_bytes([("tokenizer.chat_template", STRING, gguf_string(evil))]))
    findings = check_file(path)
    assert findings and all(f.kind == "template-injection" and f.severity == "error" for f in findings)
    assert {f.tensor for f in findings} == {"tokenizer.chat_template"}


def test_gguf_written_by_gguf_writer_passes(tmp_path):
    from gguf import GGUFWriter

    path = tmp_path / "w.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_chat_template(TEMPLATE)
    writer.add_tensor("a", np.ones((3, 32), dtype=np.float32))
    writer.add_tensor("b", np.ones(5, dtype=np.float16))
    for step in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        step()
    writer.close()
    summary = read_gguf_header(path)
    assert [(name, shape) for name, _, shape, _, _ in summary.tensors] == [("a", (32, 3)), ("b", (5,))]
    assert check_file(path) == []
