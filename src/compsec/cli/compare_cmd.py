"""``compsec compare RUN_A RUN_B``: per-variant, per-probe differences between two audit runs.

A is the reference (e.g. last release's run), B the new one; both are audit folders (or their summary.json).
Exit 0 when B has no significant drift for the worse and no new finding, 1 when it has, 2 when the runs are
not comparable (the differing config fields are named) or either is incomplete (the gate is not evaluated).
"""

from __future__ import annotations

import json
import sys

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app

SHOWN_IDS = 8
MIN_WIDTH = 100  # characters: CI logs are not terminals, and rich would squeeze the table to 80


@app.command("compare")
def compare(
    run_a: str = typer.Argument(..., help="Reference audit folder (or its summary.json)."),
    run_b: str = typer.Argument(..., help="New audit folder (or its summary.json), compared with RUN_A."),
    json_out: str = typer.Option("", "--json", help="Write the comparison as JSON to this file ('-': stdout)."),
) -> None:
    """Paired comparison of two runs: rates, flipped probes and exact McNemar p per variant and metric."""
    from compsec.audit.baseline import check_drift
    from compsec.cli.preflight import report_files
    from compsec.outputs import write_report

    report_files(json=json_out)
    drift = check_drift(run_a, run_b)
    if json_out == "-":
        sys.stdout.write(json.dumps(drift.to_json(), indent=2) + "\n")
    else:
        if json_out:
            write_report(json_out, json.dumps(drift.to_json(), indent=2))
        print_comparison(drift)
    drift.require_complete()  # an incomplete run neither passes nor fails the gate: exit 2
    raise typer.Exit(EXIT_FINDINGS if drift.failed else EXIT_OK)


def print_comparison(drift) -> None:
    """One table per variant (A = baseline, B = current) and the flipped probe ids per metric."""
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True, width=max(Console().width, MIN_WIDTH))
    console.print(f"A {drift.baseline.folder} ({drift.baseline.config_hash})  vs  "
                  f"B {drift.current.folder} ({drift.current.config_hash})", markup=False)
    for variant, diffs in drift.diffs.items():
        kl_a, kl_b = drift.kl.get(variant, (None, None))
        caption = None if kl_a is None and kl_b is None else f"mean KL to original: A {_rate(kl_a)}, B {_rate(kl_b)} nats/token"
        table = Table("metric", "A", "B", "paired", "A only", "B only", "McNemar p", "verdict", title=variant,
                      caption=caption)
        for d in diffs:
            table.add_row(d.metric, _rate(d.rate_a), _rate(d.rate_b), str(d.paired), str(len(d.lost)),
                          str(len(d.gained)), f"{d.p_value:.3g}", _verdict(d))
        console.print(table)
        for d in diffs:
            for side, ids in (("A", d.lost), ("B", d.gained)):
                if ids:
                    console.print(f"  {d.metric}: {d.positive} in {side} only: {_ids(ids)}", markup=False)
    for name in drift.unmatched:
        console.print(f"variant {name} is in only one of the runs; not compared", markup=False)
    print_drift(drift, console)


def print_drift(drift, console=None) -> None:
    """The drift verdict: drift lines, new and known findings, improvements."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console(soft_wrap=True)
    groups = (("[red]drift[/red]", drift.findings), ("[red]new finding[/red]", drift.new_findings),
              ("known finding", drift.known_findings), ("[green]improved[/green]", drift.improvements))
    for tag, lines_by_variant in groups:
        for variant, lines in lines_by_variant.items():
            for line in lines:
                console.print(f"{tag} {escape(variant)}: {escape(line)}")
    verdict = "[red]FAILED[/red]" if drift.failed else "[green]passed[/green]"
    if drift.incomplete:
        verdict = f"[red]NOT EVALUATED[/red] ({' and '.join(drift.incomplete)} run incomplete)"
    console.print(f"baseline {drift.baseline.folder}: drift gate {verdict}")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _verdict(diff) -> str:
    if diff.flagged:
        return "[red]worse[/red]"
    if diff.improved:
        return "[green]better[/green]"
    return "n.s." if diff.lost or diff.gained else "same"  # n.s.: flips, but not significant or not past the threshold


def _ids(ids: list[str]) -> str:
    more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more
