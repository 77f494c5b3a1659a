"""compsec's pickle verdict beside picklescan's, fickling's and modelscan's, and where they disagree.

Only files that may hold a pickle (:func:`compsec.integrity.external_scanners.pickle_like_files`) are compared;
a path with none gets no second opinions. compsec's own verdict on them is ``"flagged"`` when it has an error
finding (a dangerous import, or a file too malformed to scan: it refuses to load either), ``"warned"`` when it only
saw unexpected (not deny-listed) globals, ``"clean"`` when it examined one and found nothing of either kind, ``"not scanned"`` when it has no checker for any of them.
"""

from __future__ import annotations

from pathlib import Path

from compsec.integrity.check import PICKLE_CARRIER_SUFFIXES, PICKLE_SUFFIXES
from compsec.integrity.external_scanners import SCANNERS, Opinion, pickle_like_files, run_scanner
from compsec.integrity.findings import Finding


def compsec_opinion(files: list[Path], findings: list[Finding]) -> Opinion:
    """compsec's verdict on ``files`` from the ``findings`` it already produced for them."""
    from compsec import __version__

    names = {str(f) for f in files}
    errors = sorted({f.tensor or f.kind for f in findings if f.path in names and f.severity == "error"})
    if errors:
        return Opinion("compsec", __version__, "flagged", ", ".join(errors))
    examined = [f for f in files if f.suffix in PICKLE_SUFFIXES or f.suffix.lower() in PICKLE_CARRIER_SUFFIXES]
    if not examined:
        return Opinion("compsec", __version__, "not scanned", "no file with a pickle suffix compsec checks")
    unknown = sorted({f.tensor for f in findings if f.path in names and f.kind == "unknown-import"})
    if unknown:
        return Opinion("compsec", __version__, "warned", "unexpected globals: " + ", ".join(unknown))
    return Opinion("compsec", __version__, "clean", f"{len(examined)} files")


def second_opinions(path: str | Path, findings: list[Finding], tools: tuple[str, ...] = tuple(SCANNERS)) -> list[Opinion]:
    """compsec's opinion then each of ``tools``' on the pickle-like files of ``path``; empty when there are none."""
    files = pickle_like_files(Path(path))
    if not files:
        return []
    return [compsec_opinion(files, findings)] + [run_scanner(tool, path) for tool in tools]


def disagreement(opinions: list[Opinion]) -> str | None:
    """``"flagged by A, B; not flagged by C (clean), D (error)"`` when some tool flagged and another that ran
    did not; None when they agree or only one ran."""
    ran = [o for o in opinions if o.verdict != "not run"]
    flagged = [o.tool for o in ran if o.verdict == "flagged"]
    others = [f"{o.tool} ({o.verdict})" for o in ran if o.verdict != "flagged"]
    if not flagged or not others:
        return None
    return f"flagged by {', '.join(flagged)}; not flagged by {', '.join(others)}"


def opinion_findings(path: str | Path, opinions: list[Opinion]) -> list[Finding]:
    """A warning for every other tool that flags what compsec did not (so check never passes it as clean)."""
    ours = next((o for o in opinions if o.tool == "compsec"), None)
    if ours is None or ours.verdict == "flagged":
        return []
    return [Finding(str(path), None, "second-opinion", "warning",
                    f"{o.tool} {o.version} flags it ({o.detail}) but compsec's scanner did not; inspect before loading")
            for o in opinions if o.tool != "compsec" and o.verdict == "flagged"]
