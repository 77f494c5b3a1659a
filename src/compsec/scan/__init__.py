"""Static tamper scan: detect quantization-conditioned tampering from the weights alone.

>>> from compsec.scan import ScanConfig, scan_path
>>> report = scan_path("model_dir", ScanConfig(formats=("nf4", "q4_0")))
>>> report.verdict, [f.explanation for f in report.findings]

Every weight of every quantizable tensor is examined by default, streamed in chunks of rows into additive counts
(:mod:`~compsec.scan.tally`, :mod:`~compsec.scan.reader`); ``ScanConfig(sample_weights=N)`` is a quick look with
a fresh random seed (:mod:`~compsec.scan.coverage`).  A scan that could test no weight says ``"not scanned"``;
NaN/Inf weights are a finding.

Detectors (one module each, statistic and null model in its docstring): :mod:`~compsec.scan.edge_mass` (excess
within 1 % of an edge, and its depletion: adaptive attackers with fixed margins), :mod:`~compsec.scan.edge_band`
(outer quarter crowded: random margins), :mod:`~compsec.scan.block_outliers`, :mod:`~compsec.scan.grid_provenance`
(information: a checkpoint converted back from a quantized one); multiple-testing control in
:mod:`~compsec.scan.aggregate`; the behavioural contrast is a hook in :mod:`~compsec.scan.runner`.
"""

from compsec.scan.config import DEFAULT_FORMATS, ScanConfig
from compsec.scan.findings import ScanFinding, ScanReport
from compsec.scan.runner import scan_path

__all__ = ["DEFAULT_FORMATS", "ScanConfig", "ScanFinding", "ScanReport", "scan_path"]
