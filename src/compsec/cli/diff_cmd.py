"""``compsec diff A B [--formats nf4,int8] [--json FILE]``: per-tensor changes and whether they survive
quantization. Exit 0 when the models are identical, 1 when any tensor differs, 2 on error."""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app

MAX_ROWS = 40


def _verdict(value: bool | None) -> str:
    return {True: "same", False: "differs", None: "not quantized"}[value]


def print_diff(report) -> None:
    """A rich table of the changed tensors (first MAX_ROWS) and the summary lines."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console = console if console.is_terminal else Console(width=max(console.width, 140))  # pipes: no crushing
    if report.changed:
        table = Table(title="changed tensors (B vs A)")
        table.add_column("tensor", overflow="fold", min_width=24)
        for column in ("shape", "max |Δ|", "rel. norm", "changed", *report.formats):
            table.add_column(column)
        for change in report.changed[:MAX_ROWS]:
            table.add_row(change.name + (f" [{change.note}]" if change.note else ""),
                          "×".join(map(str, change.shape)), f"{change.max_abs:.3g}", f"{change.rel_norm:.3g}",
                          f"{100 * change.frac_changed:.3g}%", *(_verdict(change.same_after[f]) for f in report.formats))
        console.print(table)
        if len(report.changed) > MAX_ROWS:
            console.print(f"... and {len(report.changed) - MAX_ROWS} more changed tensors (see --json)")
    for name in report.only_a:
        console.print(f"only in A: {name}", markup=False)
    for name in report.only_b:
        console.print(f"only in B: {name}", markup=False)
    for line in report.summary():
        console.print(line, markup=False)


@app.command("diff")
def diff(
    model_a: str = typer.Argument(..., help="The reference model (safetensors file or folder)."),
    model_b: str = typer.Argument(..., help="The model to compare with it."),
    formats: str = typer.Option("nf4,int8", help="Comma-separated formats to test changes against."),
    json_out: str = typer.Option(None, "--json", help="Also write the full report as JSON to this file."),
) -> None:
    """Show every tensor that differs between A and B, and whether each difference survives quantization."""
    from compsec import formats as registry
    from compsec.cli.preflight import report_files
    from compsec.integrity.diff import diff_models
    from compsec.outputs import write_report

    report_files(json=json_out)
    report = diff_models(model_a, model_b, registry.parse_list(formats))
    print_diff(report)
    if json_out:
        write_report(json_out, json.dumps(report.as_json(), indent=2) + "\n")
    raise typer.Exit(EXIT_OK if report.identical else EXIT_FINDINGS)
