"""``compsec report DIR``: re-render summary.json and report.html from DIR/events.jsonl (no model needed).

``--baseline``, ``--sarif`` and ``--junit`` work as in ``compsec audit``, from the stored log alone.
"""

from __future__ import annotations

import typer

from compsec.cli.audit_cmd import BASELINE_HELP
from compsec.cli.main import app


@app.command("report")
def report(
    out: str = typer.Argument(..., help="An audit output folder holding events.jsonl."),
    baseline: str = typer.Option("", help=BASELINE_HELP),
    sarif: str = typer.Option("", help="Write the audit's findings as SARIF 2.1.0 to this file."),
    junit: str = typer.Option("", help="Write the audit's gates as JUnit XML to this file."),
) -> None:
    """Rebuild an audit's summary.json and report.html from its event log; exit 1 when it has findings."""
    from compsec.audit.runner import render
    from compsec.cli.audit_cmd import finish
    from compsec.cli.preflight import report_files
    from compsec.integrity.path_policy import checked_input

    report_files(sarif=sarif, junit=junit)
    checked_input(out, "audit folder")
    raise typer.Exit(finish(render(out), baseline, sarif, junit))
