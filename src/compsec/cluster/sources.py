"""The models of a ``scan-many`` run: a list file (one entry a line, or JSONL with a ``source`` field) or a
folder tree.  An entry is a local path (relative ones are relative to the list file's folder) or an fsspec URL
(``http(s)://``, ``s3://``, ``hf://``...).

In a folder tree a model is a folder holding ``config.json`` or a safetensors index (scanned as one model), else
every file with a model suffix (``.safetensors``, and pickles, GGUF... which the scan refuses with an error row, so
that a hub sees them).  Symlinks are listed, not followed: the task refuses them (they may lead out of the corpus).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from compsec.errors import InputError

URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
# the package that gives fsspec a protocol (fsspec's own message is shown too), and who answers it
BACKENDS = {"hf": ("huggingface_hub", "the Hugging Face Hub"), "s3": ("s3fs", "S3"), "gs": ("gcsfs", "Google Cloud Storage"),
            "gcs": ("gcsfs", "Google Cloud Storage"), "abfs": ("adlfs", "Azure Blob Storage"),
            "az": ("adlfs", "Azure Blob Storage"), "http": ("aiohttp", ""), "https": ("aiohttp", "")}
MODEL_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".pkl", ".ckpt", ".gguf", ".npz", ".h5")
MODEL_FOLDER_MARKERS = ("config.json", "model.safetensors.index.json")


def is_remote(entry: str) -> bool:
    """Whether ``entry`` is a URL read through fsspec (``file://`` URLs are local paths)."""
    return bool(URL.match(entry)) and not entry.startswith("file://")


def open_remote(url: str):
    """``(filesystem, path)`` of ``url`` through fsspec (``hf://`` goes to huggingface_hub's HfFileSystem);
    InputError naming the package to install when the protocol's backend is missing or the protocol unknown."""
    import fsspec

    protocol = url.split("://", 1)[0].lower()
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as err:
        package = BACKENDS.get(protocol, (f"the fsspec backend of {protocol}://", ""))[0]
        raise InputError(f"{url}: reading {protocol}:// needs {package} ({_one_line(err)}); pip install {package}, "
                         "or download the file and list its local path") from None
    except ValueError as err:
        raise InputError(f"{url}: {_one_line(err)}; entries are local paths or fsspec URLs (http(s)://, s3://, "
                         "hf://...)") from None


def unreachable(url: str, err: BaseException, attempts: int) -> str:
    """The error of a remote source whose first read failed on the network (offline, DNS, refused, 5xx...)."""
    protocol, rest = url.split("://", 1)
    where = BACKENDS.get(protocol.lower(), ("", ""))[1] or rest.split("/", 1)[0]
    causes = [err] + ([err.__cause__] if err.__cause__ is not None else [])
    why = " <- ".join(f"{type(e).__name__}: {_one_line(e)}" for e in causes)
    return (f"{url}: could not read from {where} ({attempts} attempt(s); {why}); offline or down? {protocol}:// "
            f"sources are read over the network: run where {where} answers, or download the file and list its "
            "local path")


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def read_sources(spec: str | Path) -> list[str]:
    """The entries of the list file or folder tree ``spec``, in order, without duplicates."""
    path = Path(spec)
    if not path.exists():
        raise InputError(f"{path}: no such list file or folder; give a text/JSONL list of models or a folder")
    entries = models_in_tree(path) if path.is_dir() else _list_entries(path)
    if not entries:
        raise InputError(f"{path}: lists no model; a list needs one path or URL a line, a tree model files")
    return list(dict.fromkeys(entries))


def _list_entries(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text list; give one model path or URL a line") from None
    entries = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = _jsonl_source(line, f"{path}:{number}") if line.startswith("{") else line
        entry = entry.removeprefix("file://")
        entries.append(entry if is_remote(entry) else str(path.parent / entry))
    return entries


def _jsonl_source(line: str, where: str) -> str:
    try:
        source = json.loads(line).get("source")
    except (ValueError, AttributeError):
        source = None
    if not isinstance(source, str) or not source.strip():
        raise InputError(f"{where}: a JSONL line needs a non-empty string field 'source'")
    return source.strip()


def models_in_tree(root: Path) -> list[str]:
    """Model folders and model files under ``root`` (sorted; symlinks listed, never followed)."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        if any(marker in files for marker in MODEL_FOLDER_MARKERS):
            found.append(folder)
            subfolders[:] = []
            continue
        links = [name for name in subfolders if os.path.islink(os.path.join(folder, name))]
        found += [os.path.join(folder, name) for name in sorted(files + links) if name.endswith(MODEL_SUFFIXES)
                  or os.path.islink(os.path.join(folder, name))]
    return found
