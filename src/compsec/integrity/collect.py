"""Every integrity finding for a file or folder, never raising on a hostile file: the scanner's entry point.

:func:`compsec.integrity.check_file` raises InputError at the first file too malformed to parse, which is right
before loading but hides every other file's findings from a report. :func:`integrity_findings` checks a folder
file by file and turns each such error into an error :class:`Finding` of kind ``"malformed"``, so a scanner can
list integrity findings beside its tampering findings (``severity == "error"`` means: refuse to load).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.check import check_file, symlink_findings
from compsec.integrity.findings import Finding


def _one_file(path: Path, scan_values: bool) -> list[Finding]:
    try:
        return check_file(path, scan_values)
    except (InputError, OSError) as err:
        message = " ".join(str(err).split())
        return [Finding(str(path), None, "malformed", "error", message)]


def integrity_findings(path: str | Path, scan_values: bool = True) -> list[Finding]:
    """Findings for ``path`` (a file, or every file of a folder plus symlink escapes), malformed files included
    as error findings. ``scan_values`` also reads every safetensors tensor looking for NaN/Inf (reads all data).

    Raises InputError only when ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(f"{path}: no such file or folder; check the path")
    if not path.is_dir():
        return _one_file(path, scan_values)
    findings = symlink_findings(path)
    escaped = {f.path for f in findings}
    for file in sorted(path.rglob("*")):
        if file.is_file() and str(file) not in escaped:
            findings += _one_file(file, scan_values)
    return findings


def finding_line(finding: Finding) -> str:
    """One human line: ``error model.safetensors [tensor]: message``."""
    where = f"{finding.path} [{finding.tensor}]" if finding.tensor else finding.path
    return f"{finding.severity} {where}: {finding.message}"


def finding_as_json(finding: Finding) -> dict:
    """The finding as a JSON-ready dict (path, tensor, kind, severity, message)."""
    return asdict(finding)
