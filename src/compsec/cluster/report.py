"""``report.html`` of a ``scan-many`` folder, rendered from ``results.parquet`` alone (no model is opened): verdict
counts, bytes read, the most suspicious models with their top findings, the slowest models, every error."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from compsec.cluster.table import ResultsTable, latest_rows

SHOWN = 20
STYLE = ("body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}"
         ".suspicious{color:#b00}.error{color:#a60}.clean{color:#070}")


def summary(rows: list[dict]) -> dict:
    """Verdict counts and totals over the newest row of every (source, digest)."""
    counts = Counter(row["verdict"] for row in rows)
    return {"models": len(rows), **{v: counts.get(v, 0) for v in ("clean", "suspicious", "error")},
            "bytes_read": sum(row["bytes_read"] or 0 for row in rows),
            "file_bytes": sum(row["file_bytes"] or 0 for row in rows),
            "params": sum(row["params"] or 0 for row in rows),
            "seconds": sum(row["seconds"] or 0.0 for row in rows)}


def render_report(out: str | Path) -> tuple[Path, dict]:
    """Write ``out/report.html`` from ``out/results.parquet``; return its path and :func:`summary`."""
    from compsec.errors import InputError
    from compsec.outputs import write_report

    rows = latest_rows(ResultsTable(out).rows())
    if not rows:
        raise InputError(f"{out}: holds no scan-many results ({out}/results.parquet); run compsec scan-many first")
    facts = summary(rows)
    suspicious = sorted((r for r in rows if r["verdict"] == "suspicious"), key=lambda r: -r["score"])
    slowest = sorted(rows, key=lambda r: -(r["seconds"] or 0.0))
    errors = [r for r in rows if r["verdict"] == "error"]
    body = [f"<h1>compsec scan-many: {facts['models']} models</h1>", _facts(facts),
            "<h2>Most suspicious</h2>", _table(("source", "score", "top findings"),
                                               [(r["source"], f"{r['score']:.1f}", _findings(r))
                                                for r in suspicious[:SHOWN]]),
            "<h2>Slowest</h2>", _table(("source", "seconds", "params", "bytes read", "verdict"),
                                      [(r["source"], f"{r['seconds']:.2f}", f"{r['params'] or 0:,}",
                                        f"{r['bytes_read'] or 0:,}", r["verdict"]) for r in slowest[:SHOWN]]),
            f"<h2>Errors ({len(errors)})</h2>", _table(("source", "error"), [(r["source"], r["error"])
                                                                            for r in errors])]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>compsec scan-many</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
    return write_report(Path(out) / "report.html", page), facts


def _facts(facts: dict) -> str:
    share = facts["bytes_read"] / facts["file_bytes"] if facts["file_bytes"] else 0.0
    cells = [f"<span class='{v}'>{v} {facts[v]}</span>" for v in ("clean", "suspicious", "error")]
    return (f"<p>{' &middot; '.join(cells)}</p><p>{facts['params']:,} parameters scanned; "
            f"{facts['bytes_read']:,} of {facts['file_bytes']:,} bytes read ({100 * share:.1f} %); "
            f"{facts['seconds']:.1f} s of scanning</p>")


def _findings(row: dict) -> str:
    found = json.loads(row["top_findings"] or "[]")
    return "; ".join(f"{f['tensor']} {f['format']} {f['detector']} ({f['score']:.3g})" for f in found[:3])


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    if not rows:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
