"""``compsec heads MODEL --probes refusal [--out FILE]``: ablate one attention head at a time (a real per-head
mask) and rank heads by how much the refusal rate drops. Prints the ranking as JSON; ``--out`` also writes it
(the file ``compsec prune --method heads --protect FILE`` reads)."""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("heads")
def heads(
    model: str = typer.Argument(..., help="Model folder (safetensors + config.json + tokenizer)."),
    probes: str = typer.Option("refusal", "--probes", help="Probe set whose prompts should be refused "
                               "(shipped name or .jsonl/.csv path; only kind 'refusal' rows are used)."),
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many probes (quick runs)."),
    out: str = typer.Option(None, "--out", help="Also write the ranking JSON here."),
    min_drop: float = typer.Option(0.05, "--min-drop", min=0.0, max=1.0, help="Refusal drop that marks a head critical."),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", min=1, help="Tokens generated per answer."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Prompts per generation batch."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, mps."),
) -> int:
    """Rank MODEL's attention heads by refusal-rate drop when each is masked alone."""
    from compsec.audit.probes import load_probe_sets
    from compsec.cli import preflight
    from compsec.errors import InputError
    from compsec.models.io import load_model
    from compsec.outputs import write_report
    from compsec.prune.ranking import critical_heads, rank_heads

    preflight.report_files(out=out)
    preflight.device(device)
    preflight.model_input(model, tokenizer=True)
    prompts = [p.prompt for p in load_probe_sets([probes], limit) if p.kind == "refusal"]
    if not prompts:
        raise InputError(f"probe set {probes!r} has no 'refusal' prompts; use --probes refusal")
    loaded, tokenizer = load_model(model, device=device)
    if tokenizer is None:
        raise InputError(f"{model}: no tokenizer files; head ranking needs to generate answers")
    ranking = rank_heads(loaded, tokenizer, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens,
                         device=device)
    ranking["min_drop"], ranking["critical"] = min_drop, [list(h) for h in critical_heads(ranking, min_drop)]
    text = json.dumps(ranking, indent=2)
    if out:
        write_report(out, text + "\n")
    typer.echo(text)
    return EXIT_OK
