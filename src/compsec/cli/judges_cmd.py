"""``compsec judges``: list the registered judges; ``--evaluate`` measures the refusal judge on a labelled set."""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("judges")
def judges(
    evaluate: bool = typer.Option(False, "--evaluate", help="Print the judge's accuracy and confusion matrix."),
    judge: str = typer.Option("refusal", help="Judge to evaluate."),
    labelled: str = typer.Option("", help="A labelled JSONL set (default: the one shipped with compsec)."),
    errors: bool = typer.Option(False, "--errors", help="Also list every misjudged response."),
) -> None:
    """Judges of responses: refusal detector, keyword occurrence, and registered classifiers."""
    from compsec.audit.judges import get_judge, judge_names
    from compsec.audit.judges.evaluation import evaluate_judge, load_labelled

    if not evaluate:
        for name in judge_names():
            typer.echo(name)
        raise typer.Exit(EXIT_OK)
    evaluation = evaluate_judge(get_judge(judge), load_labelled(labelled or None))
    typer.echo(f"judge {judge} on {labelled or 'the shipped labelled set'}:")
    typer.echo(evaluation.table())
    if errors:
        for row in evaluation.errors:
            typer.echo(f"{row['id']}: {row['label']} judged {row['predicted']} ({row['reason']}): {row['response']!r}")
    raise typer.Exit(EXIT_OK)
