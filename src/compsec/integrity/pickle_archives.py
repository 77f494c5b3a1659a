"""Find every pickle a file may carry, through zip, tar and 7z archives (nested ones too), compressed streams
(gzip, xz, bz2, zlib: what ``joblib.dump(compress=...)`` writes) and ``.npy`` headers, without decompressing
anything unbounded and without unpickling.

Yields ``(label, bytes, strict)``: ``label`` names the member path (``model.zip:inner/model.zip:archive/data.pkl``);
``strict`` is True where the bytes must be a pickle (a ``.pkl`` member, a raw pickle file, an object-dtype
``.npy``), so unreadable bytes there are an error, and False for members only sniffed as pickles (their first
byte is a protocol-2+ PROTO opcode), which are skipped when they do not parse (raw tensor storage can start
with 0x80 too).
"""

from __future__ import annotations

import ast
import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.compressed_members import (
    SEVEN_ZIP_MAGIC,
    compression_of,
    decompress,
    seven_zip_members,
)

MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 100_000
MAX_RATIO = 200  # declared uncompressed / compressed size
MAX_DEPTH = 3
PICKLE_MEMBER_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill")
NPY_MAGIC = b"\x93NUMPY"
COMPRESSED_SUFFIXES = PICKLE_MEMBER_SUFFIXES + (".gz", ".xz", ".bz2", ".z", ".zlib", ".lzma")


def npy_pickle(data: bytes, label: str) -> bytes | None:
    """The pickle inside an object-dtype ``.npy`` (None for numeric arrays, whose data is raw numbers)."""
    if len(data) < 10 or not data.startswith(NPY_MAGIC):
        raise InputError(f"{label}: not a .npy file (bad magic); check the file")
    major = data[6]
    size_bytes = 2 if major == 1 else 4
    start = 8 + size_bytes
    header_len = int.from_bytes(data[8:start], "little")
    try:
        header = ast.literal_eval(data[start:start + header_len].decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
        raise InputError(f"{label}: unreadable .npy header ({err}); check the file") from None
    descr = header.get("descr") if isinstance(header, dict) else None
    return data[start + header_len:] if "O" in str(descr) else None


def _source(data: bytes | Path):
    return data if isinstance(data, Path) else io.BytesIO(data)


def _too_large(name: str, size: int, label: str) -> bool:
    """True for a member too large to read; raises when it is named as a pickle (it cannot be left unscanned)."""
    if size <= MAX_PICKLE_BYTES:
        return False
    if name.lower().endswith(PICKLE_MEMBER_SUFFIXES):
        raise InputError(f"{label}: {name} is {size} bytes, over the {MAX_PICKLE_BYTES}-byte pickle limit")
    return True  # tensor storage: raw numbers, not read


def _zip_members(data: bytes | Path, label: str) -> Iterator[tuple[str, bytes]]:
    with zipfile.ZipFile(_source(data)) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_MEMBERS:
            raise InputError(f"{label}: zip has {len(members)} members; refusing (zip bomb?)")
        for info in members:
            if info.file_size > max(1, info.compress_size) * MAX_RATIO and info.file_size > 1 << 20:
                raise InputError(f"{label}: member {info.filename} expands {info.file_size} bytes "
                                 f"from {info.compress_size}; refusing a likely zip bomb")
            if _too_large(info.filename, info.file_size, label):
                continue
            with archive.open(info) as member:
                yield info.filename, member.read(MAX_PICKLE_BYTES + 1)[:MAX_PICKLE_BYTES]


def _tar_members(data: bytes | Path, label: str) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=_source(data)) if isinstance(data, bytes) else tarfile.open(data) as archive:
        for count, info in enumerate(archive):
            if count >= MAX_MEMBERS:
                raise InputError(f"{label}: tar has over {MAX_MEMBERS} members; refusing")
            if info.isfile() and not _too_large(info.name, info.size, label):
                yield info.name, archive.extractfile(info).read()


def _head(data: bytes | Path) -> bytes:
    if isinstance(data, bytes):
        return data[:512]
    with data.open("rb") as handle:
        return handle.read(512)


def _read(data: bytes | Path) -> bytes:
    if isinstance(data, bytes):
        return data
    with data.open("rb") as handle:
        return handle.read(MAX_PICKLE_BYTES)


def _stream_members(data: bytes | Path, label: str, name: str, depth: int,
                    kind: str) -> list[tuple[str, bytes]] | None:
    """The decompressed stream as one member, or None when ``data`` only starts like one: zlib's two-byte
    header also starts protocol-0 pickles (``(S``), and raw tensor storage can start like any stream. A gzip,
    xz or bz2 file given directly, or a member named as compressed, must decompress (else InputError)."""
    expected = kind != "zlib" and (depth == 0 or name.lower().endswith(COMPRESSED_SUFFIXES))
    if expected and isinstance(data, Path) and data.stat().st_size > MAX_PICKLE_BYTES:
        raise InputError(f"{label}: {kind} stream of {data.stat().st_size} bytes, over the pickle limit; refusing")
    try:
        return [(_stream_name(name, depth, kind), decompress(_read(data), kind, MAX_PICKLE_BYTES, label))]
    except InputError as err:
        if expected or "limit" in str(err):
            raise
        return None


def _stream_name(name: str, depth: int, kind: str) -> str:
    """The name a decompressed stream is scanned under: the member's name less its compression suffix; the
    stream of a file given directly must be a pickle (strict), as ``joblib.load`` would unpickle it."""
    base = name[: name.rfind(".")] if name.lower().endswith(COMPRESSED_SUFFIXES[len(PICKLE_MEMBER_SUFFIXES):]) \
        else name
    return f"<{kind}>.pkl" if depth == 0 else base


def pickles_in(data: bytes | Path, label: str, name: str = "", depth: int = 0) -> Iterator[tuple[str, bytes, bool]]:
    """Every pickle carried by ``data`` (a file, or the bytes of a member called ``name``), see the module doc."""
    head = _head(data)
    compressed = compression_of(head)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        members = _zip_members(data, label)
    elif len(head) > 262 and head[257:262] == b"ustar":
        members = _tar_members(data, label)
    elif head.startswith(SEVEN_ZIP_MAGIC):
        members = seven_zip_members(_read(data), label, MAX_PICKLE_BYTES, MAX_MEMBERS)
    elif compressed is not None and (stream := _stream_members(data, label, name, depth, compressed)) is not None:
        members = iter(stream)
    elif head.startswith(NPY_MAGIC):
        found = npy_pickle(_read(data), label)
        yield from [(label, found, True)] if found is not None else []
        return
    else:
        strict = depth == 0 or name.lower().endswith(PICKLE_MEMBER_SUFFIXES)
        if strict or head[:1] == b"\x80":
            yield label, _read(data), strict
        return
    if depth >= MAX_DEPTH:
        raise InputError(f"{label}: archives nested over {MAX_DEPTH} deep; refusing to unpack further")
    try:
        for member, blob in members:
            yield from pickles_in(blob, f"{label}:{member}", member, depth + 1)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"{label}: damaged archive ({err}); re-export the weights as safetensors") from None
