"""``compsec report DIR``: re-render summary.json and report.html from DIR/events.jsonl (no model needed).

``--baseline``, ``--sarif`` and ``--junit`` work as in ``compsec audit``, from the stored log alone. Exit codes as
``compsec audit``'s: 0 clean, 1 findings, 2 error, and 2 for an incomplete run (a variant missing records: an
interrupted audit, failed endpoint requests, a log holding only its header), after writing the report that
says what is missing.
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
    """Rebuild an audit's summary.json and report.html from its event log; exit 1 on findings, 2 if incomplete."""
    from compsec.audit.runner import render
    from compsec.cli.audit_cmd import finish
    from compsec.cli.preflight import report_files
    from compsec.integrity.path_policy import checked_input

    report_files(sarif=sarif, junit=junit)
    checked_input(out, "audit folder")
    raise typer.Exit(finish(render(out), baseline, sarif, junit))
