"""``compsec prune MODEL --method M --sparsity S --out DIR [--protect RANKING.json]``: a pruned copy of MODEL,
saved as a normal safetensors Hugging Face folder with a provenance record. Importing this module also
registers the ``prune-*`` audit variants."""

from __future__ import annotations

import json

import typer

import compsec.prune.variants  # noqa: F401  (registers prune-30 / prune-50 / prune-2:4 ... for 'compsec audit')
from compsec.cli.main import EXIT_OK, app


def _check_method(method: str) -> None:
    """Refuse an unknown --method before the model loads (parse_nm raises for a malformed N:M)."""
    from compsec.errors import InputError
    from compsec.prune.model import METHODS
    from compsec.prune.nm import parse_nm

    if ":" in method:
        parse_nm(method)
    elif method not in METHODS:
        raise InputError(f"unknown pruning method {method!r}; use one of {', '.join(METHODS)} (or another N:M)")


@app.command("prune")
def prune(
    model: str = typer.Argument(..., help="Model folder (safetensors + config.json), .safetensors or .gguf."),
    method: str = typer.Option("magnitude-global", "--method",
                               help="magnitude-global | magnitude-layer | heads | 2:4 (any N:M)."),
    sparsity: float = typer.Option(0.5, "--sparsity", min=0.0, max=1.0, help="Fraction of weights (or of heads for 'heads') zeroed."),
    out: str = typer.Option(..., "--out", help="Output folder for the pruned model."),
    protect: str = typer.Option(None, "--protect", help="Head ranking JSON from 'compsec heads': its critical "
                                "heads are never pruned (method 'heads')."),
    min_drop: float = typer.Option(0.05, "--min-drop", min=0.0, max=1.0,
                                   help="With --protect: refusal drop that makes a head critical."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
) -> int:
    """Prune MODEL's linear weights (architecture table) or attention heads and save the result to OUT."""
    from compsec.cli import preflight
    from compsec.integrity.provenance import record_provenance
    from compsec.models.io import load_model, save_model
    from compsec.outputs import staged_folder
    from compsec.prune.model import prune_model
    from compsec.prune.ranking import critical_heads, read_ranking

    preflight.check_output_folder(out, force=force)
    preflight.model_input(model)
    _check_method(method)
    protected = critical_heads(read_ranking(protect), min_drop) if protect else []
    loaded, tokenizer = load_model(model)
    summary = prune_model(loaded, method, sparsity, protected)
    with staged_folder(out) as staging:
        save_model(loaded, tokenizer, staging)
        record_provenance(staging, model, "prune", json.loads(json.dumps(summary)), seed=None)
    typer.echo(f"pruned {model} ({method}, asked {sparsity:g}): weight sparsity {summary['weight_sparsity']:.3f}"
               + (f", heads removed {summary['heads_removed']}" if "heads_removed" in summary else "")
               + f" → {out}")
    return EXIT_OK
