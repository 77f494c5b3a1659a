"""The one record every integrity check returns: :class:`Finding`.

Structural damage that makes a file unparseable raises :class:`compsec.errors.InputError`; anything a parser
can read but a human should know about (NaN weights, a pickle that imports ``os.system``, a chat template that
walks to ``__globals__``, a symlink out of the model folder) is a :class:`Finding`.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Finding:
    """One observation about one file.

    path: the file (or folder) it is about. tensor: the tensor / pickle global / metadata key concerned, or
    ``None``. kind: a short machine-readable tag (``"nan"``, ``"dangerous-import"``, ``"template-injection"``,
    ``"symlink-escape"`` ...). severity: ``"info"``, ``"warning"`` or ``"error"`` (error = refuse to load).
    message: one line saying what was found and what to do.
    """

    path: str
    tensor: str | None
    kind: str
    severity: str
    message: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


def errors_only(findings: list[Finding]) -> list[Finding]:
    """The findings serious enough that :func:`compsec.models.io.load_model` refuses the file."""
    return [f for f in findings if f.severity == "error"]
