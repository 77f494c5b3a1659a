"""``compsec report DIR``: re-render summary.json and report.html from DIR/events.jsonl (no model needed)."""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app


@app.command("report")
def report(out: str = typer.Argument(..., help="An audit output folder holding events.jsonl.")) -> None:
    """Rebuild an audit's summary.json and report.html from its event log; exit 1 when it has findings."""
    from compsec.audit.runner import render
    from compsec.cli.audit_cmd import print_summary

    result = render(out)
    print_summary(result.summary, result.out)
    raise typer.Exit(EXIT_FINDINGS if result.findings else EXIT_OK)
