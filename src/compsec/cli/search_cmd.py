"""``compsec search MODEL --variant nf4 --objective refusal-gap|kl --budget N --out DIR``: divergence search.

Looks for prompts on which the compressed variant behaves differently from the original (a thin wrapper over
``compsec.search.run_search``); ``--digits`` instead searches L-infinity perturbations of the digits
classifier's images that flip only the quantized model. Exit 0 when nothing diverged, 1 when something did.
"""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app
from compsec.search.config import help_text


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@app.command("search")
def search(
    model: str = typer.Argument(None, help=help_text("model") + " (not with --digits)"),
    variant: str = typer.Option(None, help=help_text("variant") + " [default: nf4; with --digits a comma list, "
                                "default int8,nf4,int4-rtn,int2-rtn]"),
    objective: str = typer.Option("refusal-gap", help=help_text("objective")),
    seeds: str = typer.Option("refusal,over-refusal,injection", help=help_text("seeds") + " (comma-separated)"),
    budget: int = typer.Option(1000, min=1, help=help_text("budget")),
    out: str = typer.Option("search-out", help=help_text("out")),
    seed_limit: int = typer.Option(0, min=0, help=help_text("seed_limit") + "; 0 = all"),
    pool: int = typer.Option(16, min=1, help=help_text("pool")),
    beam: int = typer.Option(4, min=1, help=help_text("beam")),
    children: int = typer.Option(4, min=1, help=help_text("children")),
    top_k: int = typer.Option(16, min=1, help=help_text("top_k")),
    verify: int = typer.Option(2, min=0, help=help_text("verify")),
    keyword: str = typer.Option("McDonald's", help=help_text("keywords") + " (comma-separated)"),
    max_new_tokens: int = typer.Option(32, min=1, help=help_text("max_new_tokens")),
    seed: int = typer.Option(0, help=help_text("seed")),
    device: str = typer.Option("cpu", help=help_text("device")),
    digits: bool = typer.Option(False, "--digits", help="Search the digits classifier's quantization boundary."),
    eps: str = typer.Option("0.01,0.03,0.05,0.1", help="--digits: L-infinity bounds (pixels in [0, 1])."),
    pgd_steps: int = typer.Option(40, min=1, help="--digits: projected-gradient steps per bound."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder holding files that are not a "
                               "search's (a search's own events.jsonl is always resumed)."),
) -> int:
    """Search for inputs on which the compressed model departs from the original."""
    from compsec.cli import preflight

    preflight.check_output_folder(out, force=force, own=("digits_boundary.json",) if digits else ("events.jsonl",))
    if digits:
        return _digits(model, variant, out, eps, pgd_steps)
    from compsec.errors import InputError
    from compsec.search import SearchConfig, run_search
    from compsec.survival.compress import check_compression

    if not model:
        raise InputError("give the MODEL folder to search (or --digits for the digits classifier)")
    preflight.device(device)
    preflight.model_input(model, tokenizer=True)
    check_compression(variant or "nf4")
    config = SearchConfig(model=model, variant=variant or "nf4", objective=objective, seeds=_split(seeds),
                          budget=budget, out=out, seed_limit=seed_limit or None, pool=pool, beam=beam,
                          children=children, top_k=top_k, verify=verify, keywords=_split(keyword),
                          max_new_tokens=max_new_tokens, seed=seed, device=device)
    progress = lambda event: typer.echo(f"round {event['round']}: {len(event['scored'])} scored, "
                                        f"{sum(v['divergent'] for v in event['verified'])} divergent", err=True)
    summary = run_search(config, on_round=progress).summary
    typer.echo(f"{summary['divergent_count']} divergent prompts in {summary['evaluations']} evaluations "
               f"({summary['divergent_per_1000']} per 1,000)")
    for row in summary["divergent"][:5]:
        typer.echo(f"- {row['prompt']!r}: {row['why']}\n    original: {row['original']!r}\n"
                   f"    variant:  {row['variant']!r}")
    typer.echo(f"wrote {out}/events.jsonl, summary.json, divergent_probes.jsonl")
    return EXIT_FINDINGS if summary["divergent_count"] else EXIT_OK


def _digits(folder: str | None, variant: str | None, out: str, eps: str, steps: int) -> int:
    from compsec.errors import InputError
    from compsec.search.digits import DEFAULT_FORMATS, digits_boundary_search

    formats = _split(variant) if variant else DEFAULT_FORMATS
    try:
        bounds = tuple(float(e) for e in _split(eps))
    except ValueError:
        raise InputError(f"--eps {eps!r}: give comma-separated numbers, e.g. 0.01,0.05") from None
    result = digits_boundary_search(out, formats, bounds, steps, folder)
    typer.echo(f"{'format':>10} {'eps':>6} {'flipped':>8} {'rate':>7}")
    for row in result["rows"]:
        typer.echo(f"{row['format']:>10} {row['eps']:>6} {row['flipped']:>4}/{row['eligible']:<4}"
                   f"{row['success_rate']:>7.1%}")
    typer.echo(f"wrote {out}/digits_boundary.json")
    return EXIT_FINDINGS if any(row["flipped"] for row in result["rows"]) else EXIT_OK
