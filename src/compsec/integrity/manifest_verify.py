"""Compare a model file or folder with a manifest: every changed, missing or extra file and tensor.

Only files whose sha256 differs are opened for their tensors, so verifying an untouched model reads each
file once. A changed file that is no longer a valid safetensors / GGUF file is reported as changed (with why),
not raised: it is exactly what verification exists to catch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.digests import file_sha256, tensor_digests
from compsec.integrity.manifest import manifest_files


@dataclass(frozen=True)
class ManifestChange:
    """One difference: ``change`` is ``"changed"``, ``"missing"`` or ``"extra"``; ``level`` is ``"file"`` or
    ``"tensor"``; ``file`` the manifest name of the file; ``tensor`` the tensor name (None for files)."""

    change: str
    level: str
    file: str
    tensor: str | None = None
    detail: str = ""

    def line(self) -> str:
        """One human line, e.g. ``changed tensor model.safetensors: model.layers.0.mlp.up_proj.weight``."""
        where = f"{self.file}: {self.tensor}" if self.tensor is not None else self.file
        return f"{self.change} {self.level} {where}" + (f" ({self.detail})" if self.detail else "")

    def as_json(self) -> dict:
        return {"change": self.change, "level": self.level, "file": self.file, "tensor": self.tensor,
                "detail": self.detail}


def _tensor_changes(name: str, expected: dict, actual: dict) -> list[ManifestChange]:
    changes = []
    for tensor, want in expected.items():
        got = actual.get(tensor)
        if got is None:
            changes.append(ManifestChange("missing", "tensor", name, tensor))
        elif got.sha256 != want["sha256"]:
            changes.append(ManifestChange("changed", "tensor", name, tensor, _shape_note(want, got)))
    changes += [ManifestChange("extra", "tensor", name, tensor) for tensor in actual if tensor not in expected]
    return changes


def _shape_note(want: dict, got) -> str:
    old = (want.get("dtype"), tuple(want.get("shape") or ()))
    return f"{old[0]}{list(old[1])} -> {got.dtype}{list(got.shape)}" if old != (got.dtype, got.shape) else ""


def changed_file(name: str, path: Path, entry: dict) -> list[ManifestChange]:
    """The changes of one file whose sha256 no longer matches: the file, then each changed / missing / extra
    tensor when ``entry`` (a manifest's ``predicate.files`` entry) lists tensor digests."""
    try:
        actual = tensor_digests(path)
    except (InputError, OSError, ValueError) as err:
        return [ManifestChange("changed", "file", name, detail=f"now unreadable: {' '.join(str(err).split())}")]
    tensor_changes = _tensor_changes(name, entry.get("tensors", {}), actual or {}) if "tensors" in entry else []
    detail = "" if tensor_changes or "tensors" not in entry else "tensors identical; header or metadata changed"
    return [ManifestChange("changed", "file", name, detail=detail), *tensor_changes]


def compare_files(expected: dict[str, str], present: dict[str, Path], digest_of, entries: dict) -> list[ManifestChange]:
    """Missing, extra and changed files (then their tensors) between ``expected`` (name -> sha256 hex) and
    ``present`` (name -> path); ``digest_of(name)`` gives a present file's sha256, ``entries`` the manifest's
    per-file tensor entries."""
    changes = []
    for name in sorted(set(expected) | set(present)):
        if name not in present:
            changes.append(ManifestChange("missing", "file", name))
        elif name not in expected:
            changes.append(ManifestChange("extra", "file", name))
        elif digest_of(name) != expected[name]:
            changes += changed_file(name, present[name], entries.get(name, {}))
    return changes


def verify_manifest(path: str | Path, manifest: dict, exclude: tuple[str | Path, ...] = ()) -> list[ManifestChange]:
    """Every difference between the files under ``path`` and ``manifest`` (see :mod:`manifest`); empty = same.

    ``exclude`` names files to ignore (typically the manifest itself when it lives inside the folder).
    """
    expected = {item["name"]: item["digest"]["sha256"] for item in manifest["subject"]}
    present = dict(manifest_files(path, exclude))
    return compare_files(expected, present, lambda name: file_sha256(present[name]), manifest["predicate"]["files"])
