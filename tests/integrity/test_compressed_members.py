"""Compressed streams and 7z archives in the pickle finder: bounded, never fooled by look-alike headers."""

import bz2
import gzip
import io
import lzma
import pickle
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.errors import InputError
from compsec.integrity.compressed_members import compression_of, decompress
from compsec.integrity.pickle_archives import pickles_in

COMPRESS = {"gzip": gzip.compress, "xz": lzma.compress, "bz2": bz2.compress, "zlib": zlib.compress}


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=4096), kind=st.sampled_from(sorted(COMPRESS)), limit=st.integers(0, 5000))
def test_decompress_returns_the_payload_or_refuses_past_the_limit(payload, kind, limit):
    data = COMPRESS[kind](payload)
    assert compression_of(data[:512]) == kind
    if len(payload) <= limit:
        assert decompress(data, kind, limit, "x") == payload
    else:
        with pytest.raises(InputError, match="limit"):
            decompress(data, kind, limit, "x")


@settings(max_examples=80, deadline=None)
@given(obj=st.recursive(st.none() | st.integers() | st.text(max_size=20) | st.binary(max_size=20),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=4), max_leaves=10),
       protocol=st.integers(0, 5))
def test_any_pickle_is_found_as_itself_never_mistaken_for_a_stream(obj, protocol, tmp_path_factory):
    """Protocol-0 pickles can start with a valid zlib header ('(S'): they must still come back unchanged."""
    path = tmp_path_factory.mktemp("p") / "x.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    assert list(pickles_in(path, "x")) == [("x", path.read_bytes(), True)]


@pytest.mark.parametrize("kind", sorted(COMPRESS))
def test_a_compressed_pickle_is_unpacked_and_labelled(kind, tmp_path):
    body = pickle.dumps({"w": [1, 2]}, protocol=4)
    path = tmp_path / "m.joblib"
    path.write_bytes(COMPRESS[kind](body))
    assert list(pickles_in(path, "m.joblib")) == [(f"m.joblib:<{kind}>.pkl", body, True)]


def test_a_gzip_bomb_is_refused_without_expanding_it(tmp_path):
    import tracemalloc

    path = tmp_path / "bomb.joblib"
    path.write_bytes(gzip.compress(b"\0" * (200 << 20), compresslevel=9))  # 200 MB of zeros in ~200 kB
    tracemalloc.start()
    with pytest.raises(InputError, match="pickle limit"):
        list(pickles_in(path, "bomb"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 << 20  # the 64 MB cap plus one chunk, never the 200 MB


def test_damaged_gzip_file_is_an_error_but_a_member_that_only_looks_like_one_is_skipped(tmp_path):
    path = tmp_path / "bad.joblib"
    path.write_bytes(b"\x1f\x8b\x08" + b"not deflate" * 10)
    with pytest.raises(InputError, match="damaged gzip"):
        list(pickles_in(path, "bad"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # tensor storage that happens to start like gzip
        archive.writestr("archive/data/0", b"\x1f\x8b\x08" + bytes(64))
    (tmp_path / "m.pt").write_bytes(buffer.getvalue())
    assert list(pickles_in(tmp_path / "m.pt", "m.pt")) == []


def test_seven_zip_members_are_read(tmp_path):
    py7zr = pytest.importorskip("py7zr", reason="needs the 'scanners' extra")
    body = pickle.dumps([1, 2, 3], protocol=4)
    with py7zr.SevenZipFile(tmp_path / "m.7z", "w") as archive:
        archive.writestr(body, "inner/data.pkl")
        archive.writestr(b"plain text", "notes.txt")
    assert list(pickles_in(tmp_path / "m.7z", "m.7z")) == [("m.7z:inner/data.pkl", body, True)]
