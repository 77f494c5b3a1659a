"""Build-once folders in the compsec cache: atomic, locked, versioned and hash-verified.

A cached folder holds whatever its builder wrote plus ``compsec_build.json``: the recipe fingerprint (a
changed recipe means a rebuild) and the sha256 of every file the builder wrote (checked on every load, so a
modified cached model is reported instead of silently used). Builders write into a temporary sibling folder
that is renamed into place only when complete; a lock file serialises concurrent builders.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from compsec.errors import InputError
from compsec.outputs import replace_folder

META_FILE = "compsec_build.json"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_meta(folder: Path) -> dict:
    """The build record of ``folder``; raises InputError when it is missing or unreadable."""
    meta_path = Path(folder) / META_FILE
    try:
        return json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{meta_path} is missing or unreadable ({err}); delete {folder} to rebuild it") from err


def verify_folder(folder: Path) -> dict:
    """Check every recorded file hash of ``folder``; returns its build record.

    Raises InputError naming the first file whose bytes differ from what the builder wrote.
    """
    meta = read_meta(folder)
    for name, recorded in meta.get("sha256", {}).items():
        path = Path(folder) / name
        actual = sha256_file(path) if path.is_file() else "missing"
        if actual != recorded:
            raise InputError(
                f"{path} does not match the hash recorded when it was built ({actual[:12]} != {recorded[:12]}); "
                f"the cached file was modified: delete {folder} to rebuild it"
            )
    return meta


def copy_cached_folder(source: Path, out_dir: Path) -> Path:
    """Copy the files of the cached folder ``source`` into ``out_dir`` and check their recorded hashes there."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in Path(source).iterdir():
        if path.is_file():
            shutil.copy2(path, out_dir / path.name)
    verify_folder(out_dir)
    return out_dir


def cached_build(target: Path, fingerprint: str, build: Callable[[Path], dict]) -> Path:
    """Return ``target``, building it first when absent or built from another recipe ``fingerprint``.

    ``build(folder)`` writes the artefacts into ``folder`` and returns JSON-able stats for the record.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{target.name}.lock"):
        if _fingerprint_of(target) == fingerprint:
            verify_folder(target)
            return target
        _remove_stale_staging(target)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as its parent
        try:
            stats = build(staging)
            _write_meta(staging, fingerprint, stats)
            replace_folder(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _remove_stale_staging(target: Path) -> None:
    """Delete staging folders left by builders that were killed; only the lock holder calls this."""
    for stale in target.parent.glob(f".{target.name}.staging-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _fingerprint_of(folder: Path) -> str | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        return None


def _write_meta(folder: Path, fingerprint: str, stats: dict) -> None:
    hashes = {path.name: sha256_file(path) for path in sorted(folder.iterdir()) if path.is_file()}
    meta = {"fingerprint": fingerprint, "sha256": hashes, "stats": stats}
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


@contextmanager
def _exclusive_lock(lock_path: Path):
    """An exclusive advisory lock (fcntl) held for the block; a no-op where fcntl does not exist."""
    try:
        import fcntl
    except ImportError:  # Windows: builders are rare there, and the rename is still atomic
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
