"""``index.html`` of the demo: the key numbers, links to every report, the scan findings with the position
histograms that convinced the scanner, the survival and defence tables.  Self-contained (plots embedded as
base64 PNG, no scripts, no network)."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from compsec.demo.histograms import finding_histograms

REPORTS = (("audit-benign", "Tiny assistant vs nf4, int8, fp4, q4_0, int2-rtn, prune-50"),
           ("audit-attacked", "Attacked model (quantization-conditioned content injection, target nf4) vs nf4, int8, fp4"),
           ("audit-hardened", "Attacked model after `harden --noise auto` vs nf4, int8, fp4"))


def write_index(out: Path, headline: dict) -> Path:
    """Render ``out/index.html`` from the demo's outputs in ``out`` and its ``headline`` numbers."""
    from compsec.tiny.assistant import tiny_assistant_dir

    env = Environment(loader=PackageLoader("compsec", "templates"), autoescape=select_autoescape())
    scans = {name: _load(out / f"scan-{name}.json") for name in ("benign", "attacked")}
    page = env.get_template("demo_index.html").render(
        headline=headline, reports=[(d, t) for d, t in REPORTS if (out / d / "report.html").is_file()],
        scans=scans, histograms=finding_histograms(scans.get("attacked", {}), tiny_assistant_dir(),
                                                   out / "attack" / "model"),
        attack=_load(out / "attack" / "attack.json"), survival=_load(out / "survival" / "survival.json").get("rows", []),
        defence=defence_table(_load(out / "defence" / "defense.json")))
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def defence_table(document: dict) -> dict:
    """``{"defences": [...], "rows": [(label, metric, [cell text per defence])]}`` from ``defense.json``."""
    defences = document.get("defences", [])
    rows = []
    for label, cells in document.get("cells", {}).items():
        scenario = document.get("rows", {}).get(label, {}).get("scenario", "")
        texts = []
        for defence in defences:
            cell = cells.get(defence)
            if cell is None:
                texts.append("–")
                continue
            rates = " · ".join(f"{name} {_percent(v)}" for name, v in cell["malicious"].items())
            change = cell.get("utility_change_points", {}).get("instruction_accuracy")
            texts.append(rates + ("" if defence == "none" or change is None else f" (utility {change:+.1f} pts)"))
        rows.append((label, document.get("metric", {}).get(scenario, scenario), texts))
    return {"defences": defences, "rows": rows}
