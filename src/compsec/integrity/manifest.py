"""Integrity manifests: per-file sha256 and per-tensor digests, as an in-toto Statement v1.

Layout (so sigstore / in-toto tools can sign it as an attestation)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "model.safetensors", "digest": {"sha256": "..."}}, ...],   # one per file, sorted
     "predicateType": "https://compsec.dev/tensor-manifest/v1",
     "predicate": {"tool": {"name": "compsec", "version": "0.1.0"}, "digest_scheme": "compsec-tensor-v1",
                   "files": {"model.safetensors": {"size": 123, "tensors": {name: {dtype, shape, sha256}}}}}}

File names are POSIX paths relative to the folder (or the bare file name for a single file). ``.git`` and
``.cache`` folders are skipped; a symlink that leaves the folder is refused (copy the real file in instead).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from compsec import __version__
from compsec.errors import InputError
from compsec.integrity.digests import file_sha256, tensor_digests

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://compsec.dev/tensor-manifest/v1"
SKIPPED_DIRS = {".git", ".cache"}
MAX_MANIFEST_BYTES = 256 * 1024 * 1024


def _walk(root: Path) -> list[tuple[str, Path]]:
    found = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for entry in files + [d for d in dirs if (Path(current) / d).is_symlink()]:
            path = Path(current) / entry
            if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
                raise InputError(f"{path}: symlink points outside {root}; copy the real file in before hashing")
            if path.is_file():
                found.append((path.relative_to(root).as_posix(), path))
    return found


def manifest_files(path: str | Path, exclude: tuple[str | Path, ...] = ()) -> list[tuple[str, Path]]:
    """``(name, path)`` of every file a manifest of ``path`` covers, sorted by name; ``exclude`` is skipped."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_symlink():
        raise InputError(f"{path}: is a symlink; give the real file or folder")
    found = _walk(path) if path.is_dir() else [(path.name, path)]
    skip = {Path(p).resolve() for p in exclude}
    return sorted((name, file) for name, file in found if file.resolve() not in skip)


def file_entry(file: Path) -> dict:
    """The predicate entry of one file: its size and, for safetensors / GGUF, every tensor's digest."""
    entry: dict = {"size": file.stat().st_size}
    digests = tensor_digests(file)
    if digests is not None:
        entry["tensors"] = {name: digest.as_json() for name, digest in digests.items()}
    return entry


def create_manifest(path: str | Path, exclude: tuple[str | Path, ...] = ()) -> dict:
    """Build the manifest statement of a model file or folder (files hashed in chunks, tensors one at a time).

    Malformed safetensors / GGUF files raise InputError (they are validated before their tensors are read).
    """
    files = manifest_files(path, exclude)
    if not files:
        raise InputError(f"{path}: no files to hash, so a manifest would attest nothing; give the model's folder")
    subject = [{"name": name, "digest": {"sha256": file_sha256(file)}} for name, file in files]
    predicate = {"tool": {"name": "compsec", "version": __version__}, "digest_scheme": "compsec-tensor-v1",
                 "files": {name: file_entry(file) for name, file in files}}
    return {"_type": STATEMENT_TYPE, "subject": subject, "predicateType": PREDICATE_TYPE, "predicate": predicate}


def write_manifest(path: str | Path, out: str | Path) -> dict:
    """Create the manifest of ``path`` and write it as JSON to ``out`` (excluded from itself); return it."""
    from compsec.outputs import write_report

    manifest = create_manifest(path, exclude=(out,))
    write_report(out, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _malformed(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: {problem}; not a compsec manifest, recreate it with `compsec manifest create`")


def load_manifest(path: str | Path) -> dict:
    """Read and validate a manifest file (structure only; signatures are the signing tool's job)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such manifest file; check the path")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise _malformed(path, f"over {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise _malformed(path, f"not valid JSON ({' '.join(str(err).split())[:100]})") from None
    check_manifest(manifest, path)
    return manifest


def check_manifest(manifest: object, path: Path = Path("manifest")) -> None:
    """Raise InputError unless ``manifest`` has the statement layout of the module docstring."""
    if not isinstance(manifest, dict) or manifest.get("_type") != STATEMENT_TYPE:
        raise _malformed(path, f"_type is not {STATEMENT_TYPE}")
    if manifest.get("predicateType") != PREDICATE_TYPE:
        raise _malformed(path, f"predicateType is not {PREDICATE_TYPE}")
    subject, files = manifest.get("subject"), (manifest.get("predicate") or {}).get("files")
    if not isinstance(subject, list) or not isinstance(files, dict):
        raise _malformed(path, "subject must be a list and predicate.files an object")
    if not subject:
        raise _malformed(path, "its subject lists no files, so it attests nothing")
    for item in subject:
        ok = isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("digest"), dict)
        if not ok or not isinstance(item["digest"].get("sha256"), str):
            raise _malformed(path, "every subject needs a name and digest.sha256")
    for name, entry in files.items():
        tensors = entry.get("tensors", {}) if isinstance(entry, dict) else None
        if not isinstance(tensors, dict) or not all(isinstance(t, dict) and "sha256" in t for t in tensors.values()):
            raise _malformed(path, f"predicate.files[{name!r}] must hold tensors with a sha256 each")


def content_digest(manifest: dict) -> str:
    """sha256 of what a manifest attests (file names + sha256, tensor digests), independent of the tool version
    and of JSON formatting: two manifests of identical content share this digest."""
    files = {item["name"]: item["digest"]["sha256"] for item in manifest["subject"]}
    tensors = {name: {t: d["sha256"] for t, d in entry.get("tensors", {}).items()}
               for name, entry in manifest["predicate"]["files"].items()}
    canonical = json.dumps({"files": files, "tensors": tensors}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
