"""The records a scan produces: one :class:`Evidence` per (tensor, format, detector) test, the
:class:`ScanFinding` a human reads, and the :class:`ScanReport` rendered as JSON / SARIF / a table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

VERDICTS = ("clean", "suspicious", "not scanned")
SEVERITIES = ("suspicious", "info")


@dataclass(frozen=True)
class Evidence:
    """One statistical test before multiple-testing control.

    ``p_value`` None = untestable (too few informative weights).  ``effect_ok``: the detector's effect-size
    floor is met (a huge tensor makes tiny, harmless deviations significant; the floor keeps them out).
    """

    tensor: str
    format: str
    detector: str
    score: float
    p_value: float | None
    effect_ok: bool
    explanation: str


@dataclass(frozen=True)
class ScanFinding:
    """One line of the report.  ``severity``: ``"suspicious"`` (counts towards the verdict) or ``"info"``.
    ``p_value``: Benjamini-Hochberg adjusted for tamper tests, None for information."""

    tensor: str
    format: str
    detector: str
    score: float
    p_value: float | None
    explanation: str
    severity: str = "suspicious"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")


@dataclass
class ScanReport:
    """What ``compsec scan`` returns; :meth:`to_dict` is the ``--json`` document.

    ``verdict``: ``"not scanned"`` when no test could run on any weight (and nothing was found): the scan examined
    nothing and must not say clean.  ``skipped``: ``{"tensor", "reason"}`` for every tensor not examined.
    ``sample_seed``: the seed of a sampled run (None: every weight examined); ``miss_probability``: for a
    sampled run, the chance that the sample holds none of a fingerprint covering 1 / 10 / 50 % of a tensor's
    rows (``"rows"``) or blocks (``"blocks"``), worst tensor (:mod:`compsec.scan.coverage`).
    """

    path: str
    verdict: str
    score: float
    findings: list[ScanFinding]
    formats_checked: list[str]
    params_scanned: int
    seconds: float
    tensors_scanned: int = 0
    weights_examined: int = 0
    tests_run: int = 0
    notes: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)
    sample_seed: int | None = None
    miss_probability: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def suspicious(self) -> list[ScanFinding]:
        return [f for f in self.findings if f.severity == "suspicious"]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["findings"] = [asdict(f) for f in self.findings]
        return out
