"""One entry point per path: :func:`check_file` picks the right validator by suffix; :func:`ensure_safe` is
what :func:`compsec.models.io.load_model` calls before any library opens the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.findings import Finding, errors_only

PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}
PICKLE_CARRIER_SUFFIXES = {".joblib", ".dill", ".npy", ".npz", ".zip", ".tar", ".7z", ".gz", ".xz", ".bz2", ".tgz"}
# ^ pickles, archives of them, or compressed streams of either
MAX_JSON_BYTES = 50 * 1024 * 1024
WEIGHT_SUFFIXES = frozenset({".safetensors", ".gguf", *PICKLE_SUFFIXES})


def _safetensors(path: Path, scan_values: bool) -> list[Finding]:
    from compsec.integrity.safetensors_check import nonfinite_findings, read_header

    if not set(read_header(path)) - {"__metadata__"}:
        return [_no_tensors(path)]
    return nonfinite_findings(path) if scan_values else []


def _no_tensors(path: Path) -> Finding:
    return Finding(str(path), None, "no-tensors", "error", "holds no tensors, so there is nothing to check or load; "
                   "re-export the model")


def _gguf(path: Path, scan_values: bool) -> list[Finding]:
    from compsec.integrity.gguf_check import read_gguf_header
    from compsec.integrity.template_check import template_findings

    header = read_gguf_header(path)
    findings = [] if header.tensors else [_no_tensors(path)]
    template = header.metadata.get("tokenizer.chat_template")
    if isinstance(template, str):
        findings += template_findings(template, str(path), "tokenizer.chat_template")
    return findings


def _pickle(path: Path, scan_values: bool) -> list[Finding]:
    from compsec.integrity.pickle_scan import pickle_findings

    return pickle_findings(path)


def _load_json(path: Path) -> dict:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InputError(f"{path.name}: over {MAX_JSON_BYTES} bytes, too large for a config; check the file")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise InputError(f"{path.name}: not valid JSON ({' '.join(str(err).split())[:100]}); fix the file")
    return loaded if isinstance(loaded, dict) else {}


def _json_config(path: Path, scan_values: bool) -> list[Finding]:
    from compsec.integrity.template_check import template_findings, templates_in_tokenizer_config

    config = _load_json(path)
    findings = [f for key, text in templates_in_tokenizer_config(config) for f in template_findings(text, str(path), key)]
    if "auto_map" in config:
        message = "config asks for custom remote code (auto_map); compsec loads with trust_remote_code=False"
        findings.append(Finding(str(path), "auto_map", "remote-code", "warning", message))
    return findings


def _jinja(path: Path, scan_values: bool) -> list[Finding]:
    from compsec.integrity.template_check import template_findings

    if path.stat().st_size > MAX_JSON_BYTES:
        raise InputError(f"{path.name}: over {MAX_JSON_BYTES} bytes, too large for a chat template")
    return template_findings(path.read_text(encoding="utf-8", errors="replace"), str(path), path.name)


def _checker(path: Path):
    if path.suffix == ".safetensors":
        return _safetensors
    if path.suffix == ".gguf":
        return _gguf
    if path.suffix in PICKLE_SUFFIXES or path.suffix.lower() in PICKLE_CARRIER_SUFFIXES:
        return _pickle
    if path.suffix == ".jinja":
        return _jinja
    if path.name in ("config.json", "tokenizer_config.json"):
        return _json_config
    return None


def require_something_to_check(path: str | Path) -> None:
    """Raise InputError when checking ``path`` would examine nothing a verdict could rest on: a folder holding no
    model weights (``.safetensors``, ``.gguf`` or pickle files), or a file of a kind compsec has no checker for."""
    path = Path(path)
    if path.is_dir():
        if not any(p.suffix in WEIGHT_SUFFIXES and p.is_file() for p in path.rglob("*")):
            raise InputError(f"{path}: no model weights found (.safetensors, .gguf or pickle), so nothing was checked; "
                             "give the folder or file that holds the weights")
    elif path.exists() and _checker(path) is None:
        raise InputError(f"{path.name}: not a kind of file compsec checks, so nothing was checked; give a "
                         ".safetensors, .gguf or pickle weights file, a config.json or a chat template")


def symlink_findings(folder: str | Path) -> list[Finding]:
    """An error finding for every symlink under ``folder`` that resolves outside it."""
    root = Path(folder).resolve()
    findings = []
    for current, dirs, files in os.walk(root):
        for entry in dirs + files:
            link = Path(current) / entry
            if link.is_symlink() and not link.resolve().is_relative_to(root):
                message = f"symlink {entry} points outside the model folder; copy the real file in instead"
                findings.append(Finding(str(link), None, "symlink-escape", "error", message))
    return findings


def check_file(path: str | Path, scan_values: bool = True) -> list[Finding]:
    """Validate one file (or every file of a folder) and return findings.

    Raises InputError for files too malformed to parse at all. ``scan_values`` also streams safetensors
    tensors looking for NaN/Inf (reads all the data; header checks alone read a few bytes).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir():
        return check_folder(path, scan_values)
    checker = _checker(path)
    return checker(path, scan_values) if checker else []


def check_folder(folder: str | Path, scan_values: bool = True) -> list[Finding]:
    """Symlink escapes plus :func:`check_file` on every known file of the folder (escaping links skipped)."""
    findings = symlink_findings(folder)
    escaped = {f.path for f in findings}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and str(path) not in escaped and _checker(path):
            findings += check_file(path, scan_values)
    return findings


def ensure_safe(path: str | Path, scan_values: bool = False) -> list[Finding]:
    """Run :func:`check_file`; raise InputError on the first error finding, else return the findings."""
    findings = check_file(path, scan_values)
    errors = errors_only(findings)
    if errors:
        raise InputError(f"{errors[0].path}: {errors[0].message}")
    return findings
