"""The hostile input corpus of the verb x input test, built once per session.

Model inputs are the integrity tests' own malformed safetensors and GGUF files (imported from
tests/integrity, not copied), a pickle that would run code, escaping symlinks, missing and empty paths;
each is used as a FILE and as the weights of an otherwise valid model folder (the tiny assistant's config
and tokenizer). Other inputs (logs, probe sets, labelled sets, student configs, garak reports) get the JSON
classes: nested too deeply, not JSON, not UTF-8, not objects, missing fields, empty.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
from pathlib import Path

INTEGRITY_TESTS = Path(__file__).resolve().parent.parent / "integrity"
DEEP_JSON = "[" * 100_000 + "]" * 100_000
PICKLE_MARKER = "pickle-ran"


def _malformed(test_file: str) -> dict[str, bytes]:
    spec = importlib.util.spec_from_file_location(f"_corpus_{Path(test_file).stem}", INTEGRITY_TESTS / test_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MALFORMED


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model_folder(folder: Path, tiny: Path) -> Path:
    """``folder`` with the tiny assistant's config and tokenizer files, no weights."""
    folder.mkdir(parents=True)
    for path in tiny.iterdir():
        if path.is_file() and path.suffix != ".safetensors" and path.name != "compsec_build.json":
            shutil.copy2(path, folder / path.name)
    return folder


def weight_blobs(root: Path) -> dict[str, tuple[str, bytes]]:
    """name -> (file name, bytes) of every hostile weights file."""
    blobs = {f"st-{_slug(k)}": ("model.safetensors", v) for k, v in _malformed("test_integrity_safetensors.py").items()}
    blobs.update({f"gguf-{_slug(k)}": ("model.gguf", v) for k, v in _malformed("test_integrity_gguf.py").items()})
    blobs["pickle-runs-code"] = ("pytorch_model.bin", pickle.dumps(_RunsCode(root / PICKLE_MARKER)))
    return blobs


def build_model_inputs(root: Path, tiny: Path) -> dict[str, Path | str]:
    """name -> path of every hostile model input (as a file, and as a model folder's weights)."""
    inputs: dict[str, Path] = {}
    outside = root / "outside"
    outside.mkdir()
    shutil.copy2(tiny / "model.safetensors", outside / "model.safetensors")
    for name, (file_name, blob) in weight_blobs(root).items():
        file = root / "files" / f"{name}{Path(file_name).suffix}"
        file.parent.mkdir(exist_ok=True)
        file.write_bytes(blob)
        inputs[f"file:{name}"] = file
        folder = _model_folder(root / "folders" / name, tiny)
        (folder / file_name).write_bytes(blob)
        inputs[f"folder:{name}"] = folder
    for name, target in (("symlink-etc-passwd", Path("/etc/passwd")),
                         ("symlink-valid-weights-outside", outside / "model.safetensors")):
        folder = _model_folder(root / "folders" / name, tiny)
        (folder / "model.safetensors").symlink_to(target)
        inputs[f"folder:{name}"] = folder
    (root / "files" / "symlink-etc-passwd.safetensors").symlink_to("/etc/passwd")
    inputs["file:symlink-etc-passwd"] = root / "files" / "symlink-etc-passwd.safetensors"
    inputs["folder:config-only"] = _model_folder(root / "folders" / "config-only", tiny)
    (root / "folders" / "empty").mkdir()
    inputs["folder:empty"] = root / "folders" / "empty"
    inputs["path:missing"] = root / "no-such-model"
    inputs["path:empty-string"] = ""  # not Path(""): that is "."
    return inputs


def json_inputs(root: Path) -> dict[str, Path]:
    """name -> path of hostile JSON / JSONL files (and a folder and a missing path where a file is expected)."""
    folder = root / "json"
    folder.mkdir()
    texts = {"deep": DEEP_JSON + "\n", "not-json": "{not json\n", "list-lines": "[1, 2]\n", "empty": "",
             "fields-missing": json.dumps({"unexpected": 1}) + "\n"}
    found = {}
    for name, text in texts.items():
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
        found[name] = folder / f"{name}.jsonl"
    (folder / "not-utf8.jsonl").write_bytes(b'{"id": "\xff\xfe"}\n')
    found["not-utf8"] = folder / "not-utf8.jsonl"
    found["a-folder"] = folder
    found["missing"] = folder / "missing.jsonl"
    return found


def audit_logs(root: Path) -> dict[str, Path]:
    """name -> audit-like folder whose events.jsonl is hostile (for report and compare)."""
    logs = {}
    lines = {"deep": DEEP_JSON, "not-json": "{oops", "not-config": json.dumps({"event": "record"}),
             "record-missing-fields": json.dumps({"event": "config"}) + "\n" + json.dumps({"event": "record"}),
             "list-line": "[]", "not-utf8": None}
    for name, text in lines.items():
        folder = root / "logs" / name
        folder.mkdir(parents=True)
        if text is None:
            (folder / "events.jsonl").write_bytes(b"\xff\xfe\n")
        else:
            (folder / "events.jsonl").write_text(text + "\n", encoding="utf-8")
        logs[name] = folder
    (root / "logs" / "empty").mkdir()
    logs["empty-folder"] = root / "logs" / "empty"
    logs["missing"] = root / "logs" / "missing"
    return logs
