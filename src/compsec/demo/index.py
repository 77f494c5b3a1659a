"""``index.html`` of the demo: the key numbers, links to every report, the scan findings with the position
histograms that convinced the scanner.  Self-contained (plots embedded as base64 PNG, no network)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

REPORTS = (("audit-benign", "Tiny assistant vs nf4, int8, fp4, q4_0, int2-rtn, prune-50"),
           ("audit-attacked", "Attacked model (quantization-conditioned content injection, target nf4) vs nf4, int8, fp4"),
           ("audit-hardened", "Attacked model after `harden --noise auto` vs nf4, int8, fp4"))


def write_index(out: Path, headline: dict) -> Path:
    """Render ``out/index.html`` from the demo's outputs in ``out`` and its ``headline`` numbers."""
    env = Environment(loader=PackageLoader("compsec", "templates"), autoescape=select_autoescape())
    scans = {name: _load(out / f"scan-{name}.json") for name in ("benign", "attacked")}
    page = env.get_template("demo_index.html").render(
        headline=headline, reports=[(d, t) for d, t in REPORTS if (out / d / "report.html").is_file()],
        scans=scans, histogram=_position_histogram(out), attack=_load(out / "attack" / "attack.json"),
        survival=_load(out / "survival" / "survival.json").get("rows", []))
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _position_histogram(out: Path, fmt_name: str = "nf4") -> str | None:
    """Base64 PNG: nf4 positions of one MLP weight, tiny assistant vs attacked model (PGD pushes to edges)."""
    from compsec import formats
    from compsec.models.stream import iter_tensors
    from compsec.tiny.assistant import tiny_assistant_dir

    tensor = "model.layers.0.mlp.down_proj.weight"
    sources = {"benign (tiny assistant)": tiny_assistant_dir(), "attacked (after PGD repair)": out / "attack" / "model"}
    if not (out / "attack" / "model").is_dir():
        return None
    fmt = formats.get(fmt_name)
    positions = {}
    for label, folder in sources.items():
        weights = dict(iter_tensors(folder)).get(tensor)
        if weights is None:
            return None
        p = fmt.positions(weights.float())
        positions[label] = p[~p.isnan()].numpy()
    return _plot(positions, f"{fmt_name} positions of {tensor} (0 = lower edge, 1 = upper edge)")


def _plot(series: dict, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    for label, values in series.items():
        ax.hist(values, bins=50, range=(0, 1), histtype="step", density=True, label=label, linewidth=1.5)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("position inside the preimage interval")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
