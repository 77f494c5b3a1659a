"""A remote safetensors file (any fsspec URL) made local for the unchanged scan: whole, or sparse.

Whole (``sample`` 0, the default scan examines every weight): streamed into a local file, hashed on the way
(digest ``sha256:...``).  Sparse (``sample`` N): the 8-byte prefix and the header are read and validated first
(a hostile length or header is refused before any data is fetched), then only the byte ranges a sampled scan reads
(:func:`compsec.cluster.row_plan.needed_ranges`) are fetched into a sparse local file of the same size; the scan
of that file gives the same findings as a scan of the whole file with the same seed.  NaN/Inf are then checked
on the bytes read only, and the scan still walks every row of the sparse copy (its NaN/Inf and storage pass reads
the holes as zeros from the page cache), so CPU time, unlike bytes over the wire, still grows with the file.  A sparse file's digest is the provider's content hash when it gives one (Hugging Face's
LFS sha256, an ETag, Content-MD5), else ``header-sha256:`` over the size and header (weaker: documented).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import CompsecError, InputError

STREAM_BLOCK = 8 << 20
RANGES_PER_CALL = 256  # ranges per fs.cat_ranges call (fsspec's async filesystems fetch them concurrently)
PROVIDER_HASHES = ("sha256", "ETag", "etag", "Content-MD5", "Digest")
OFFLINE = ConnectionError  # huggingface_hub's OfflineModeIsEnabled (HF_HUB_OFFLINE=1) is one


class RemoteUnreachable(CompsecError):
    """A remote source's first read failed on the network (after its retries): offline, DNS, refused."""


@dataclass(frozen=True)
class Fetched:
    """A local copy of a remote file: its path, bytes read over the wire, remote size, digest."""

    path: Path
    bytes_read: int
    file_bytes: int
    digest: str


def transient(err: BaseException) -> bool:
    """Whether a read error is worth retrying: connection trouble, timeouts, HTTP 429 / 5xx (also as the cause of
    the FileNotFoundError fsspec's HTTP filesystem raises when a HEAD and a GET both fail)."""
    if err.__cause__ is not None and transient(err.__cause__):
        return True
    if type(err).__name__ == "OfflineModeIsEnabled":  # HF_HUB_OFFLINE=1: no attempt will get through
        return False
    status = getattr(err, "status", None) or getattr(err, "code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, InputError)):
        return False
    return isinstance(err, (ConnectionError, TimeoutError, OSError)) or type(err).__module__.startswith("aiohttp")


def with_retries(read: Callable, retries: int, pause_s: float = 0.5):
    """``read()``, retried ``retries`` times with doubling pauses when it fails transiently."""
    for attempt in range(retries + 1):
        try:
            return read()
        except Exception as err:  # only transient errors are retried; the rest re-raised
            if attempt == retries or not transient(err):
                raise
            time.sleep(pause_s * 2 ** attempt)
    raise AssertionError("unreachable")


def fetch(url: str, folder: Path, sample: int, plan_ranges: Callable[[dict], list[tuple[int, int]]],
          retries: int) -> Fetched:
    """``url`` as ``folder/model.safetensors``: whole when ``sample`` is 0, else sparse (``plan_ranges(header)``:
    the data byte ranges to read, relative to the data buffer)."""
    from compsec.cluster.sources import open_remote, unreachable

    if not url.split("?")[0].endswith(".safetensors"):
        raise InputError(f"{url}: remote sources must be .safetensors files (the scan reads nothing else)")
    fs, path = open_remote(url)
    try:
        info = with_retries(lambda: fs.info(path), retries)
    except Exception as err:  # the first contact: a network failure here means the source cannot be reached
        if transient(err) or isinstance(err, OFFLINE):
            raise RemoteUnreachable(unreachable(url, err, retries + 1)) from err
        raise
    size = int(info.get("size") or 0)
    local = folder / "model.safetensors"
    if sample == 0:
        return _whole(fs, path, local, size, retries)
    return _sparse(fs, path, local, size, info, plan_ranges, retries)


def _whole(fs, path: str, local: Path, size: int, retries: int) -> Fetched:
    digest, done = hashlib.sha256(), 0
    with local.open("wb") as out:
        while done < size:
            block = with_retries(lambda at=done: fs.cat_file(path, start=at, end=min(size, at + STREAM_BLOCK)),
                                 retries)
            if not block:
                raise InputError(f"{path}: the server returned no bytes at offset {done} of {size}")
            out.write(block)
            digest.update(block)
            done += len(block)
    return Fetched(local, done, size, "sha256:" + digest.hexdigest())


def _sparse(fs, path: str, local: Path, size: int, info: dict, plan_ranges, retries: int) -> Fetched:
    from compsec.integrity.safetensors_check import header_length, validate_header

    name = path.rsplit("/", 1)[-1]
    prefix = with_retries(lambda: fs.cat_file(path, start=0, end=min(size, 8)), retries)
    length = header_length(prefix, size, name)
    raw = with_retries(lambda: fs.cat_file(path, start=8, end=8 + length), retries)
    header = validate_header(raw, size - 8 - length, name)
    ranges = merged(plan_ranges(header))
    base, read = 8 + length, 8 + length
    with local.open("wb") as out:
        out.truncate(size)
        out.write(prefix + raw)
        for first in range(0, len(ranges), RANGES_PER_CALL):
            batch = ranges[first:first + RANGES_PER_CALL]
            blocks = with_retries(lambda b=batch: fs.cat_ranges([path] * len(b), [base + x for x, _ in b],
                                                                [base + y for _, y in b], on_error="raise"), retries)
            for (begin, end), block in zip(batch, blocks):
                if len(block) != end - begin:
                    raise InputError(f"{path}: asked for {end - begin} bytes at {base + begin}, got {len(block)}; "
                                     "the server must honour Range requests")
                out.seek(base + begin)
                out.write(block)
                read += len(block)
    return Fetched(local, read, size, provider_digest(info) or header_digest(size, raw))


def merged(ranges: list[tuple[int, int]], gap: int = 4096) -> list[tuple[int, int]]:
    """Sorted ``ranges`` with overlapping ones, and ones less than ``gap`` bytes apart, joined."""
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return [(b, e) for b, e in out]


def provider_digest(info: dict) -> str | None:
    """The content hash a provider reports in ``fs.info`` (None when it gives none)."""
    lfs = info.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        return "sha256:" + str(lfs["sha256"])
    for key in PROVIDER_HASHES:
        if info.get(key):
            return f"{key.lower()}:{str(info[key]).strip(chr(34))}:{info.get('size')}"
    return None


def header_digest(size: int, raw_header: bytes) -> str:
    """The weak digest of a sparse read without a provider hash: sha256 of the size and the header bytes."""
    return "header-sha256:" + hashlib.sha256(str(size).encode() + b"\0" + raw_header).hexdigest()
