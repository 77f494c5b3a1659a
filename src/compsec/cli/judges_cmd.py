"""``compsec judges``: list the registered judges; ``--evaluate`` measures one on a labelled set."""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("judges")
def judges(
    evaluate: bool = typer.Option(False, "--evaluate", help="Print the judge's accuracy, recalls and confusion."),
    judge: str = typer.Option("refusal", help="Judge to evaluate (refusal, refusal-tfidf, refusal-rules, ...)."),
    labelled: str = typer.Option("", help="Labelled JSONL or CSV (columns response, label, optional request), or a "
                                          "shipped frozen set: 'holdout' (the default) or 'real' (real SmolLM2 "
                                          "answers)."),
    judge_url: str = typer.Option("", help="OpenAI-compatible /v1 base URL of the judge model (for --judge llm)."),
    json_out: str = typer.Option(None, "--json", help="Also write {n, accuracy, recall, confusion} to this file."),
    errors: bool = typer.Option(False, "--errors", help="Also list every misjudged response."),
) -> None:
    """Judges of responses: the refusal judge (rules + SmolLM2 probe), TF-IDF, rules, keyword, registered classifiers."""
    from compsec.audit.judges import get_judge, judge_names
    from compsec.audit.judges.evaluation import SHIPPED_SETS, evaluate_judge, load_labelled, shipped_rows
    from compsec.cli.preflight import report_files
    from compsec.outputs import write_report

    if not evaluate:
        for name in judge_names():
            typer.echo(name)
        raise typer.Exit(EXIT_OK)
    report_files(json=json_out)
    chosen = get_judge(judge, url=judge_url) if judge_url else get_judge(judge)
    shipped = SHIPPED_SETS.get(labelled or "holdout")
    rows = shipped_rows(shipped) if shipped else load_labelled(labelled)
    evaluation = evaluate_judge(chosen, rows)
    typer.echo(f"judge {judge} on {'the shipped ' + shipped if shipped else labelled}:")
    typer.echo(evaluation.table())
    if errors:
        for row in evaluation.errors:
            typer.echo(f"{row.get('id', '-')}: {row['label']} judged {row['predicted']} ({row['reason']}): "
                       f"{row['response']!r}")
    if json_out:
        write_report(json_out, json.dumps({"judge": judge, **evaluation.to_json()}, indent=1))
    raise typer.Exit(EXIT_OK)
