"""Where verbs write: the output policy of every verb, checked before any work starts.

- A report FILE (``--json``, ``--sarif``, ``--junit``, ``manifest -o``, ``heads --out``) may overwrite an
  existing file (rerunning a report is normal); it may not be a folder, and its folder must exist and be
  writable.
- An output FOLDER must be new or empty. A folder already holding files is refused unless ``--force``, or
  unless it holds the verb's own resumable state (``events.jsonl`` of an audit or search, ``attack.json``...),
  which the verb resumes from.
- A MODEL folder is written into a temporary sibling and renamed into place only when complete; with
  ``--force`` the previous folder is moved aside and deleted after the rename, so no stale file of an older
  model survives next to the new one and an interrupted write leaves the old folder untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from compsec.errors import InputError

SHOWN_ENTRIES = 3


def _nonempty(path: str | Path, option: str) -> Path:
    if not str(path).strip():
        raise InputError(f"{option}: empty path; give a path to write to")
    return Path(path)


def _writable_ancestor(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` must be a writable folder (it will hold ``path``)."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{option} {path}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: folder {ancestor} is not writable; choose another path")


def check_output_file(path: str | Path, option: str = "output") -> Path:
    """A report file path that can be written (an existing file is overwritten, missing folders above it are
    created when it is written by :func:`write_report`); InputError otherwise."""
    path = _nonempty(path, option)
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{option} {path}: file is not writable; choose another path")
    _writable_ancestor(path, option)
    return path


def check_output_folder(path: str | Path, option: str = "--out", force: bool = False,
                        own: tuple[str, ...] = ()) -> Path:
    """An output folder that is new, empty, holds one of the ``own`` files (resumable state) or is ``force``d."""
    path = _nonempty(path, option)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: is a file; give a folder path")
    _writable_ancestor(path, option)
    if not path.is_dir():
        return path
    if not os.access(path, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: folder is not writable; choose another folder")
    entries = sorted(entry.name for entry in path.iterdir())
    if entries and not force and not any((path / name).exists() for name in own):
        shown = ", ".join(entries[:SHOWN_ENTRIES]) + (", ..." if len(entries) > SHOWN_ENTRIES else "")
        raise InputError(f"{option} {path}: folder already holds files ({shown}); choose a new or empty folder, "
                         "or pass --force to replace its content")
    return path


def write_report(path: str | Path, text: str) -> Path:
    """Write ``text`` to the report file ``path`` atomically (a temporary sibling renamed over it), creating
    missing folders above it; a reader never sees a half-written report."""
    path = make_parent(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def make_parent(path: str | Path) -> Path:
    """``Path(path)`` once the folders above it exist (for writers that open the file themselves)."""
    path = Path(path)
    path.absolute().parent.mkdir(parents=True, exist_ok=True)
    return path


def replace_folder(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an older ``target`` is moved aside first and then deleted."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``target``; when the block succeeds it becomes ``target``
    (:func:`replace_folder`), when it fails it is deleted and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is as readable as a mkdir'd one
        yield staging
        replace_folder(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
