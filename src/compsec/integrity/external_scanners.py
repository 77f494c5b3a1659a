"""Other pickle scanners as second opinions: picklescan, fickling and modelscan, each run in process.

Each adapter returns one :class:`Opinion` for a file or folder. A tool that is not installed says ``"not run"``,
one that raised says ``"error"``, one that examined nothing says ``"not scanned"``: none of these is ever
``"clean"``, so a tool's absence or crash cannot turn a finding into a pass.

Versions are pinned in the ``scanners`` extra above known-bad releases (fickling's allow-list check never ran
up to 0.1.11, CVE-2026-14535).
"""

from __future__ import annotations

import copy
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

VERDICTS = ("flagged", "warned", "clean", "not scanned", "error", "not run")
PICKLE_LIKE = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill", ".npy", ".npz", ".zip",
               ".tar", ".gz", ".7z", ".dat", ".data"}


@dataclass(frozen=True)
class Opinion:
    """One scanner's verdict on a path: ``verdict`` is one of :data:`VERDICTS`; ``detail`` says why."""

    tool: str
    version: str | None
    verdict: str
    detail: str = ""

    def line(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"second opinion {self.tool}{version}: {self.verdict}" + (f" ({self.detail})" if self.detail else "")

    def as_json(self) -> dict:
        return {"tool": self.tool, "version": self.version, "verdict": self.verdict, "detail": self.detail}


def pickle_like_files(path: Path) -> list[Path]:
    """The files under ``path`` (or ``path`` itself) that may hold a pickle: by suffix, or any zip archive."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return [f for f in files if f.suffix.lower() in PICKLE_LIKE or zipfile.is_zipfile(f)]


def _picklescan(path: Path) -> tuple[str, str]:
    from picklescan.scanner import SafetyLevel, scan_directory_path, scan_file_path

    result = scan_directory_path(str(path)) if path.is_dir() else scan_file_path(str(path))
    dangerous = sorted({f"{g.module}.{g.name}" for g in result.globals if g.safety == SafetyLevel.Dangerous})
    if result.issues_count or result.infected_files:
        return "flagged", ", ".join(dangerous) or f"{result.issues_count} issues"
    if result.scan_err:
        return "error", "scan error (picklescan could not parse a file)"
    return ("clean", f"{result.scanned_files} files") if result.scanned_files else ("not scanned", "")


def _fickling(path: Path) -> tuple[str, str]:
    from fickling import scan_file, scan_zip_archive
    from fickling.analysis import Severity

    results = []
    for file in pickle_like_files(path):
        found = scan_zip_archive(str(file), graceful=True) if zipfile.is_zipfile(file) else {
            file.name: scan_file(str(file), graceful=True)}
        results += [(f"{file.name}:{member}", result) for member, result in found.items()]
    if not results:
        return "not scanned", ""
    worst = max((result.severity for _, result in results), key=lambda s: s.value[0])
    if worst == Severity.LIKELY_SAFE:
        return "clean", f"{len(results)} pickles"
    where = [name for name, result in results if result.severity == worst]
    return "flagged", f"{worst.name} in {', '.join(where)}"


def _modelscan(path: Path) -> tuple[str, str]:
    from modelscan.modelscan import ModelScan
    from modelscan.settings import DEFAULT_SETTINGS

    report = ModelScan(settings=copy.deepcopy(DEFAULT_SETTINGS)).scan(path)
    issues, errors = report.get("issues", []), report.get("errors", [])
    if issues:
        return "flagged", ", ".join(sorted({f"{i.get('severity')} {i.get('operator')}" for i in issues}))
    if errors:
        return "error", "; ".join(str(e.get("description", e))[:100] for e in errors[:2])
    scanned = report["summary"]["scanned"]["total_scanned"]
    return ("clean", f"{scanned} files") if scanned else ("not scanned", "")


SCANNERS = {"picklescan": ("picklescan", _picklescan), "fickling": ("fickling", _fickling),
            "modelscan": ("modelscan", _modelscan)}


def run_scanner(tool: str, path: str | Path) -> Opinion:
    """Run one of :data:`SCANNERS` on ``path``; never raises for the tool's own failures."""
    package, scan = SCANNERS[tool]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        return Opinion(tool, None, "not run", "not installed: pip install 'compsec[scanners]'")
    try:
        verdict, detail = scan(Path(path))
    except Exception as err:  # noqa: BLE001  (a third-party scanner crashing on a hostile file is a verdict)
        verdict, detail = "error", f"{type(err).__name__}: {' '.join(str(err).split())[:160]}"
    return Opinion(tool, version, verdict, detail)
