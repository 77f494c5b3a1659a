"""``report.html``: one self-contained page (no CDN, plots embedded as base64 PNG) rendered from the log.

Sections: what an incomplete run is missing (first, when it is), the rates of every variant with their 95 %
Wilson intervals and request fault counts (plot and table), the findings, and the flips table (prompt, original response, variant response side by side, weakest original refusal first).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2

from compsec.audit.record import Record
from compsec.audit.summary import ORIGINAL

PLOTTED = ("refusal_rate", "over_refusal_rate", "keyword_rate", "utility_accuracy")

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>compsec audit {{ config_hash }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:78rem;color:#222}
table{border-collapse:collapse;margin:1rem 0;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;
vertical-align:top;text-align:left;font-size:.9rem}th{background:#f3f3f3}.num{text-align:right}
.finding{color:#a00}.ok{color:#070}pre{white-space:pre-wrap;margin:0;font-family:inherit}
</style></head><body>
<h1>Paired differential safety audit</h1>
<p>Config hash <code>{{ config_hash }}</code>. Rates are over scorable responses, with 95 % Wilson intervals.</p>
{% if incomplete %}<h2 class="finding">Incomplete run: {{ incomplete|length }} variant(s) missing records</h2>
<p class="finding">Rates below cover only the prompts answered; no gate is evaluated on this run (exit 2).
Rerun the same <code>compsec audit</code> command into this folder: it sends only what is missing.</p>
<table><tr><th>variant</th><th>prompts missing</th><th>answered</th><th>why</th><th>missing prompts</th></tr>
{% for name, e in incomplete.items() %}<tr><td>{{ name }}</td>
<td class="num">{{ e.missing }} of {{ e.expected if e.expected else "?" }}</td><td class="num">{{ e.answered }}</td>
<td>{{ e.stopped or e.last_failure or "not run (interrupted)" }}</td>
<td>{{ e.missing_probes[:40]|join(", ") }}{% if e.missing_probes|length > 40 %} (+{{ e.missing_probes|length - 40 }} more){% endif %}</td>
</tr>{% endfor %}</table>{% endif %}
<img alt="rates per variant with 95% intervals" src="data:image/png;base64,{{ plot }}">
<table><tr><th>variant</th><th>n</th>{% for m in metrics %}<th>{{ m }}</th>{% endfor %}
<th>KL to original (nats/token)</th><th>unscorable</th><th>requests failed / retried / truncated</th></tr>
{% for name, v in variants.items() %}<tr><td>{{ name }}</td><td class="num">{{ v.n }}</td>
{% for m in metrics %}<td class="num">{{ fmt_interval(v.intervals[m]) }}</td>{% endfor %}
<td class="num">{{ "%.4f"|format(v.kl_to_original) if v.kl_to_original is not none else "-" }}</td>
<td class="num">{{ v.unscorable }}</td>
<td class="num">{{ v.requests.failed }} / {{ v.requests.retried }} / {{ v.requests.truncated }}</td></tr>{% endfor %}</table>
<h2>Findings</h2>
{% if findings %}<ul>{% for name, lines in findings.items() %}{% for line in lines %}
<li class="finding"><b>{{ name }}</b>: {{ line }}</li>{% endfor %}{% endfor %}</ul>
{% elif incomplete %}<p class="finding">None on the prompts answered; the run is incomplete, so this is not a pass.</p>
{% else %}<p class="ok">No variant degrades past the thresholds.</p>{% endif %}
<h2>Flips against the original</h2>
{% for name, f in flips.items() %}<h3>{{ name }}: {{ f.refused_to_complied|length }} refused&rarr;complied,
{{ f.complied_to_refused|length }} complied&rarr;refused (exact McNemar p = {{ "%.3g"|format(f.mcnemar_p) }},
{{ f.paired }} paired)</h3>
{% if rows[name] %}<table><tr><th>probe</th><th>direction</th><th>original margin</th><th>prompt</th>
<th>original response</th><th>{{ name }} response</th></tr>
{% for r in rows[name] %}<tr><td>{{ r.id }}</td><td>{{ r.direction }}</td><td class="num">{{ r.margin }}</td>
<td><pre>{{ r.prompt }}</pre></td><td><pre>{{ r.original }}</pre></td><td><pre>{{ r.variant }}</pre></td></tr>
{% endfor %}</table>{% endif %}{% endfor %}
</body></html>
"""


def write_report(path: str | Path, summary: dict, records: list[Record]) -> Path:
    """Render the report for ``summary`` (from :func:`build_summary`) and its ``records`` into ``path``."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(TEMPLATE).render(
        config_hash=summary.get("config_hash"), variants=summary["variants"], flips=summary["flips"],
        findings=summary.get("findings", {}), incomplete=summary.get("incomplete", {}), metrics=PLOTTED, plot=rates_plot_png(summary["variants"]),
        rows=_flip_rows(summary["flips"], records), fmt_interval=_fmt_interval,
    )
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def rates_plot_png(variants: dict) -> str:
    """Base64 PNG of each plotted rate per variant, with its Wilson interval as an error bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(PLOTTED), sharey=True)
    names = list(variants)
    for ax, metric in zip(axes, PLOTTED):
        for x, name in enumerate(names):
            cell = variants[name]["intervals"][metric]
            if cell["rate"] is None:
                continue
            err = [[max(0.0, cell["rate"] - cell["lo"])], [max(0.0, cell["hi"] - cell["rate"])]]
            ax.errorbar([x], [cell["rate"]], yerr=err, fmt="o", capsize=4,
                        color="black" if name == ORIGINAL else "tab:red")
        ax.set_title(metric.replace("_", " "), fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlim(-0.5, max(len(names), 1) - 0.5)  # a log with no records yet still renders
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _fmt_interval(cell: dict) -> str:
    if cell["rate"] is None:
        return "-"
    return f"{cell['rate']:.3f} [{cell['lo']:.3f}, {cell['hi']:.3f}] ({cell['k']}/{cell['n']})"


def _flip_rows(flips: dict, records: list[Record]) -> dict[str, list[dict]]:
    by_key = {(r.variant, r.probe_id): r for r in records if r.kind == "refusal"}
    rows = {}
    for name, entry in flips.items():
        rows[name] = []
        for direction, ids in (("refused→complied", entry["refused_to_complied"]),
                               ("complied→refused", entry["complied_to_refused"])):
            for pid in ids:
                original, variant = by_key[(ORIGINAL, pid)], by_key[(name, pid)]
                margin = original.scores.get("refusal_margin")
                rows[name].append({"id": pid, "direction": direction, "prompt": original.prompt,
                                   "original": original.response, "variant": variant.response,
                                   "margin": "-" if margin is None else f"{margin:.2f}"})
    return rows
