"""A corpus of small models for scan-many: benign, planted fingerprints (scan.synthetic), hostile files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .conftest import write_model

SHAPE = (128, 256)
HOSTILE = {  # name -> bytes: files every scan must refuse with an error row
    "pickle.bin": b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93.",
    "pickled.pkl": b"\x80\x02cposix\nsystem\nq\x00.",
    "truncated.safetensors": b"\x10\x00\x00",
    "huge-header.safetensors": (1 << 60).to_bytes(8, "little") + b"{}",
    "out-of-bounds.safetensors": (len(b'{"w":{"dtype":"F16","shape":[1024,1024],"data_offsets":[0,2097152]}}')
                                  .to_bytes(8, "little")
                                  + b'{"w":{"dtype":"F16","shape":[1024,1024],"data_offsets":[0,2097152]}}' + b"\0" * 64),
}


def build_corpus(folder: Path, served: Path, url_of, benign: int = 36, planted: int = 8, outliers: int = 4,
                 ) -> tuple[list[str], dict[str, Path]]:
    """Write the corpus under ``folder`` (and copies under ``served`` for the HTTP server); return the source
    list and, for each source, the local file holding its bytes (None for sources with no local twin)."""
    folder.mkdir(exist_ok=True)
    twins: dict[str, Path] = {}
    kinds = ["benign"] * benign + ["nf4-planted"] * planted + ["outliers"] * outliers
    for index, kind in enumerate(kinds):
        path = folder / f"{index:03d}-{kind}.safetensors"
        write_model(path, kind, seed=index, shape=SHAPE)
        twins[str(path)] = path
    for name, blob in HOSTILE.items():
        (folder / name).write_bytes(blob)
        twins[str(folder / name)] = folder / name
    link = folder / "link.safetensors"
    os.symlink(folder / "000-benign.safetensors", link)
    twins[str(link)] = None
    for name in ("000-benign.safetensors", f"{benign:03d}-nf4-planted.safetensors", "huge-header.safetensors"):
        shutil.copy(folder / name, served / name)
        twins[url_of(name)] = folder / name
    return list(twins), twins
