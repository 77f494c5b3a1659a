"""Containers the pickle finder opens besides zip and tar: compressed streams and 7z archives, read bounded.

``joblib.dump(..., compress=...)`` writes a pickle through zlib, gzip, bz2 or xz and ``joblib.load`` runs it, so a
scanner that only sniffs for the pickle PROTO byte passes such a file. 7z archives hide pickles the same way
(picklescan and modelscan do not open them). Each stream is decompressed with a hard output limit (a larger
output is refused, never left unscanned); 7z member sizes are read from the archive's header before anything
is extracted, through py7zr when it is installed (the ``scanners`` extra), otherwise the archive is refused
with a message naming what to install.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from collections.abc import Iterator

from compsec.errors import InputError, MissingDependencyError

SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
XZ_MAGIC = b"\xfd7zXZ\x00"
CHUNK = 1 << 20


def compression_of(head: bytes) -> str | None:
    """The compressed-stream kind ``head`` starts with: gzip, xz, bz2, zlib (or None)."""
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(XZ_MAGIC):
        return "xz"
    if head.startswith(b"BZh") and head[3:4].isdigit():
        return "bz2"
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return "zlib"  # RFC 1950 header: deflate method, check bits
    return None


def _decompressor(kind: str):
    if kind == "gzip":
        return zlib.decompressobj(wbits=31)
    if kind == "zlib":
        return zlib.decompressobj()
    return lzma.LZMADecompressor() if kind == "xz" else bz2.BZ2Decompressor()


def _chunks(data: bytes, kind: str) -> Iterator[bytes]:
    """The decompressed output of ``data`` in pieces of at most CHUNK bytes (so a bomb is stopped early)."""
    engine = _decompressor(kind)
    if kind in ("gzip", "zlib"):
        pending = data
        while pending and not engine.eof:
            yield engine.decompress(pending, CHUNK)
            pending = engine.unconsumed_tail
        if not engine.eof:
            yield engine.flush()  # what the last input left in the window (at most 32 kB)
        return
    yield engine.decompress(data, max_length=CHUNK)
    while not engine.eof and not engine.needs_input:
        yield engine.decompress(b"", max_length=CHUNK)


def decompress(data: bytes, kind: str, limit: int, label: str) -> bytes:
    """``data`` decompressed as ``kind``, at most ``limit`` bytes; InputError when it is larger or damaged."""
    out = bytearray()
    try:
        for chunk in _chunks(data, kind):
            out += chunk
            if len(out) > limit:
                raise InputError(f"{label}: {kind} stream expands past the {limit}-byte pickle limit; "
                                 "refusing to scan it")
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as err:
        raise InputError(f"{label}: damaged {kind} stream ({err}); re-export the weights as safetensors") from None
    return bytes(out)


def seven_zip_members(data: bytes, label: str, limit: int, max_members: int) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every file in a 7z archive; sizes checked from its header before extraction."""
    try:
        import py7zr
        from py7zr.io import BytesIOFactory
    except ImportError as err:
        raise MissingDependencyError("py7zr", "scanners", purpose=f"looking inside the 7z archive {label}") from err
    try:
        with py7zr.SevenZipFile(io.BytesIO(data), mode="r") as archive:
            files = [info for info in archive.list() if not info.is_directory]
            if len(files) > max_members:
                raise InputError(f"{label}: 7z has {len(files)} members; refusing")
            big = [info.filename for info in files if (info.uncompressed or 0) > limit]
            if big:
                raise InputError(f"{label}: 7z member {big[0]} is over the {limit}-byte pickle limit; refusing")
            factory = BytesIOFactory(limit)
            archive.extract(factory=factory)
        for info in files:
            member = factory.products.get(info.filename)
            if member is not None:
                member.seek(0)
            yield info.filename, member.read() if member is not None else b""
    except (py7zr.exceptions.ArchiveError, py7zr.exceptions.Bad7zFile, lzma.LZMAError, EOFError, OSError) as err:
        raise InputError(f"{label}: damaged 7z archive ({err}); re-export the weights as safetensors") from None
