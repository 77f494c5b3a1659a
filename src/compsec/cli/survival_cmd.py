"""``compsec survival --fixture digits|tiny|both --out DIR``: plant a backdoor, compress, measure.

Prints the table (attack success rate and clean accuracy per compression) and writes ``DIR/survival.json``
with ``rows`` (each: model, compression, asr, clean_accuracy, notes). The full run trains: the digits
fixture takes about a minute, the tiny assistant several minutes on 2 CPU cores.
"""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("survival")
def survival(
    fixture: str = typer.Option("both", "--fixture", help="digits (BadNets patch), tiny (trigger phrase) or both."),
    out: str = typer.Option(..., "--out", help="Folder for survival.json."),
    compressions: str = typer.Option(None, "--compressions", help="Comma-separated subset of: original, int8, "
                                     "nf4, fp4, q4_0 (any format), prune-30/50/70, 2:4, distilled, fine-pruning."),
    seed: int = typer.Option(0, "--seed", help="Seed of poisoning, training and sampling."),
    device: str = typer.Option("cpu", "--device", help="torch device for the tiny assistant: cpu, cuda, mps."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder holding other files."),
) -> int:
    """Measure whether a planted backdoor survives quantization, pruning, distillation and fine-pruning."""
    from compsec.cli import preflight
    from compsec.errors import InputError
    from compsec.survival import table
    from compsec.survival.compress import check_compression

    if fixture not in (*table.FIXTURES, "both"):
        raise InputError(f"unknown fixture {fixture!r}; use digits, tiny or both")
    preflight.check_output_folder(out, force=force, own=("survival.json",))
    preflight.device(device)
    chosen = list(table.DEFAULT_COMPRESSIONS) if compressions is None else [
        c.strip() for c in compressions.split(",") if c.strip()]
    for name in chosen:  # before any backdoor is trained
        if name not in table.EXTRA_ROWS:
            check_compression(name)
    progress = lambda row: typer.echo(f"measured {row['model']} / {row['compression']}", err=True)
    rows = table.run_survival(fixture, chosen, seed, device, progress)
    path = table.write_survival(out, rows, {"fixture": fixture, "compressions": chosen, "seed": seed})
    typer.echo(table.format_table(rows))
    typer.echo(f"wrote {path}")
    return EXIT_OK
