"""The one path policy of every verb that reads a model, a log or any other input.

- the path must exist (an empty path or a missing file is an error naming it, never "no record" or "clean");
- inside a folder, no symlink may resolve outside the folder (HF-cache style links included: copy the real
  files in), so no verb reads a file the folder's owner did not put there;
- a file read next to a single-file input (its ``config.json``, ``compsec.json``, ``provenance.json``) obeys
  the same rule relative to that file's folder.

The path given on the command line may itself be a symlink: that is the user's own choice.
:func:`compsec.integrity.ensure_safe` (what the loaders call) applies this policy and also validates headers.
"""

from __future__ import annotations

from pathlib import Path

from compsec.errors import InputError


def checked_input(path: str | Path, what: str = "file or folder") -> Path:
    """``Path(path)`` after the policy of the module docstring; InputError naming the offending path."""
    from compsec.integrity.check import symlink_findings

    if not str(path).strip():
        raise InputError(f"empty path given for the {what}; give a {what}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such {what}; check the path")
    if path.is_dir():
        escapes = symlink_findings(path)
        if escapes:
            raise InputError(f"{escapes[0].path}: {escapes[0].message}")
    return path


def checked_sibling(file: Path, folder: Path) -> Path:
    """``file`` (a file next to an input, inside ``folder``) unless it is a symlink leading out of ``folder``."""
    if file.is_symlink() and not file.resolve().is_relative_to(folder.resolve()):
        raise InputError(f"{file}: symlink points outside the model folder; copy the real file in instead")
    return file
