"""``compsec lm-eval MODEL --variants nf4,int8 --tasks ... --out DIR``: lm-evaluation-harness tasks per variant.

Writes ``DIR/lm_eval.json`` and, when ``DIR/summary.json`` exists (an audit's output folder), adds the scores
under its ``lm_eval`` key. Exit 0 when no variant loses documents significantly, 1 when one does (more
documents lost than gained, exact McNemar p below ``--p-value``), 2 on error. Needs ``compsec[lm-eval]``.
"""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@app.command("lm-eval")
def lm_eval_verb(
    model: str = typer.Argument(..., help="Model folder (safetensors + config.json + tokenizer)."),
    variants: str = typer.Option("nf4,int8", help="Formats or model folders compared with the original."),
    tasks: str = typer.Option("compsec_utility_mc,compsec_capitals_gen", help="lm-eval task names."),
    out: str = typer.Option("audit-out", help="Folder for lm_eval.json (an audit folder: summary.json too)."),
    include: str = typer.Option("", help="Extra folders of lm-eval task YAML files (comma-separated)."),
    limit: int = typer.Option(0, min=0, help="At most this many documents per task; 0 = all."),
    device: str = typer.Option("cpu", help="torch device: cpu, cuda, cuda:1, mps."),
    batch_size: int = typer.Option(16, min=1, help="Requests per model call."),
    chat_template: bool = typer.Option(True, help="Wrap prompts in the tokenizer's chat template."),
    p_value: float = typer.Option(0.05, min=0.0, max=1.0, help="Significance level of the exact McNemar test on lost documents."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder holding other files."),
) -> None:
    """Run lm-eval tasks on the original and each compressed variant; report scores and lost documents."""
    from compsec.bridges.lm_eval_bridge import LmEvalRun, run_lm_eval
    from compsec.bridges.lm_eval_scores import write_results
    from compsec.cli import preflight

    preflight.check_output_folder(out, force=force, own=("lm_eval.json", "events.jsonl", "summary.json"))  # or an audit's
    preflight.device(device)
    preflight.model_input(model, tokenizer=True)
    run = LmEvalRun(model=model, tasks=_split(tasks), variants=_split(variants), include=_split(include),
                    limit=limit or None, device=device, batch_size=batch_size, chat_template=chat_template)
    payload = run_lm_eval(run)
    path = write_results(out, payload)
    findings = significant_losses(payload, p_value)
    print_scores(payload, findings)
    print(f"wrote {path}")
    raise typer.Exit(EXIT_FINDINGS if findings else EXIT_OK)


def significant_losses(payload: dict, p_value: float) -> list[str]:
    """One line per (variant, task, metric) that lost more documents than it gained with McNemar p < p_value."""
    lines = []
    for variant, tasks in payload["flips"].items():
        for task, metrics in tasks.items():
            for metric, flip in metrics.items():
                if len(flip["lost"]) > len(flip["gained"]) and flip["mcnemar_p"] < p_value:
                    lines.append(f"{variant} {task} {metric}: lost {len(flip['lost'])}, gained "
                                 f"{len(flip['gained'])} of {flip['paired']} (exact McNemar p={flip['mcnemar_p']:.3g})")
    return lines


def print_scores(payload: dict, findings: list[str]) -> None:
    """A variant x task table of lm-eval's scores (stderr omitted), then the findings."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"lm-eval {payload['lm_eval_version']} on {payload['model']}")
    table.add_column("variant")
    for task in payload["tasks"]:
        table.add_column(task)
    for variant, scores in payload["variants"].items():
        table.add_row(variant, *(_cell(scores.get(task, {})) for task in payload["tasks"]))
    console = Console()
    console = console if console.is_terminal else Console(width=max(console.width, 140))  # pipes: no crushing
    console.print(table)
    for line in findings:
        console.print(f"[red]finding[/red] {line}")


def _cell(scores: dict) -> str:
    shown = [f"{k}={v:.3f}" for k, v in scores.items() if k != "n" and "stderr" not in k and v is not None]
    return " ".join(shown) + f" (n={scores.get('n', 0)})" if shown else "-"
