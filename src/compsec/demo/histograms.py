"""The position histograms behind the scanner's strongest findings: for each suspicious (tensor, format), where
the weights sit inside their preimage intervals in the benign model vs the scanned one (0 = lower edge,
1 = upper edge).  PGD repair inside a box pushes weights to the edges; a benign model's positions are flat."""

from __future__ import annotations

import base64
import io
from pathlib import Path


def strongest_findings(scan: dict, limit: int = 4) -> list[dict]:
    """Up to ``limit`` suspicious findings of ``scan`` with distinct (tensor, format), smallest p-value first."""
    from compsec import formats

    suspicious = [f for f in scan.get("findings", []) if f.get("severity") == "suspicious"
                  and f.get("format") in formats.names()]
    suspicious.sort(key=lambda f: (f.get("p_value") if f.get("p_value") is not None else 1.0, -f.get("score", 0)))
    chosen, seen = [], set()
    for finding in suspicious:
        key = (finding["tensor"], finding["format"])
        if key not in seen:
            seen.add(key)
            chosen.append(finding)
        if len(chosen) == limit:
            break
    return chosen


def finding_histograms(scan: dict, benign_dir: Path, scanned_dir: Path, limit: int = 4) -> list[dict]:
    """``[{"finding": ..., "png": base64}]``: benign vs scanned positions for each of the strongest findings."""
    from compsec import formats
    from compsec.models.stream import iter_tensors

    findings = strongest_findings(scan, limit)
    if not findings or not Path(scanned_dir).is_dir():
        return []
    wanted = {f["tensor"] for f in findings}
    benign = {n: t for n, t in iter_tensors(benign_dir) if n in wanted}
    scanned = {n: t for n, t in iter_tensors(scanned_dir) if n in wanted}
    plots = []
    for finding in findings:
        name, fmt = finding["tensor"], formats.get(finding["format"])
        if name not in benign or name not in scanned:
            continue
        series = {label: _positions(fmt, weights[name]) for label, weights
                  in (("benign (tiny assistant)", benign), ("scanned (attacked model)", scanned))}
        plots.append({"finding": finding, "png": _plot(series, f"{fmt.name} positions of {name}")})
    return plots


def _positions(fmt, weights):
    p = fmt.positions(weights.float())
    return p[~p.isnan()].numpy()


def _plot(series: dict, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 2.6))
    for label, values in series.items():
        ax.hist(values, bins=40, range=(0, 1), histtype="step", density=True, label=label, linewidth=1.4)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("position inside the preimage interval (0 = lower edge, 1 = upper)", fontsize=7)
    ax.set_ylabel("density", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
