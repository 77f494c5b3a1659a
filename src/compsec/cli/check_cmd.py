"""``compsec check PATH``: hostile-file checks (safetensors/GGUF headers, NaN/Inf, pickle imports, chat-template
injection, symlinks) without loading anything.

Exit 0 when clean (info findings only), 1 with warnings, 2 with a one-line message on stderr when any file is
malformed or hostile (an error finding: compsec would refuse to load it).
"""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK, app


@app.command("check")
def check(
    path: str = typer.Argument(..., help="A model file or folder to check before loading it."),
    values: bool = typer.Option(True, "--values/--no-values", help="Also scan safetensors tensors for NaN/Inf."),
    json_out: str = typer.Option(None, "--json", help="Also write findings and second opinions as JSON here."),
    others: bool = typer.Option(True, "--second-opinions/--no-second-opinions",
                                help="Also run picklescan, fickling and modelscan (where installed) on pickles."),
) -> None:
    """Check PATH for malformed or hostile content; nothing is loaded or unpickled."""
    from compsec.cli.preflight import report_files
    from compsec.integrity.check import require_something_to_check
    from compsec.integrity.collect import finding_as_json, finding_line, integrity_findings
    from compsec.integrity.path_policy import checked_input
    from compsec.integrity.second_opinions import disagreement, opinion_findings, second_opinions
    from compsec.models.weights_check import checkpoint_findings
    from compsec.outputs import write_report

    report_files(json=json_out)
    checked_input(path)
    findings = integrity_findings(path, scan_values=values)
    if not any(f.severity == "error" for f in findings):  # files sound: are they the tensors config.json names?
        findings += checkpoint_findings(path)
    opinions = second_opinions(path, findings) if others else []
    findings += opinion_findings(path, opinions)
    split = disagreement(opinions)
    for line in [finding_line(f) for f in findings] + [o.line() for o in opinions]:
        typer.echo(line)
    if split:
        typer.echo(f"scanners disagree: {split}")
    if json_out:
        report = {"findings": [finding_as_json(f) for f in findings],
                  "second_opinions": [o.as_json() for o in opinions], "disagreement": split}
        write_report(json_out, json.dumps(report, indent=2) + "\n")
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        typer.echo(" ".join(f"error: refusing {path}: {errors[0].message}{more}".split()), err=True)
        raise typer.Exit(EXIT_ERROR)
    require_something_to_check(path)  # an empty folder (or one holding only config.json) is never "clean"
    if any(f.severity == "warning" for f in findings):
        raise typer.Exit(EXIT_FINDINGS)
    typer.echo(f"clean: {path}")
    raise typer.Exit(EXIT_OK)
