"""``compsec defend-matrix --attack-dir DIR [--attack-dir DIR ...] --out DIR``: attacks x defences."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from compsec.cli.main import EXIT_OK, app
from compsec.defend.noise import DEFAULT_C


@app.command("defend-matrix")
def defend_matrix(
    attack_dir: Annotated[list[str], typer.Option("--attack-dir", help="A `compsec attack` folder (repeatable).")],
    out: str = typer.Option(..., "--out", help="Folder for defense.json (and adaptive attack variants)."),
    defences: str = typer.Option("none,noise-1e-3,noise-auto,clip,mixed", help="Comma-separated columns."),
    c: float = typer.Option(DEFAULT_C, min=0.0, help="noise-auto multiplier (sigma = c x finest median half-width)."),
    seed: int = typer.Option(0, help="Noise seed."),
    budget: str = typer.Option("5%", help="mixed: share of quantizable parameters kept unquantized."),
    adaptive_k: float = typer.Option(3.0, min=0.0, help="Adaptive row: box shrunk by k noise sigmas; 0 skips the row."),
    probe_limit: int = typer.Option(40, min=0, help="Probes per set when measuring (0: all)."),
    max_new_tokens: int = typer.Option(40, min=1, help="Generation length when measuring."),
    device: str = typer.Option("cpu", help="Torch device, e.g. cpu or cuda:0."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder holding other files."),
) -> int:
    """Measure every defence against every attack artifact: malicious rate per format and fp32 utility change."""
    from compsec.cli import preflight
    from compsec.defend.matrix import MatrixConfig, run_matrix
    from compsec.defend.mixed import parse_budget
    from compsec.integrity.path_policy import checked_input

    preflight.check_output_folder(out, force=force, own=("defense.json",))
    preflight.device(device)
    for folder in attack_dir:
        checked_input(folder, "attack folder")

    config = MatrixConfig(attack_dirs=tuple(attack_dir), out=out,
                          defences=tuple(d.strip() for d in defences.split(",") if d.strip()), c=c, seed=seed,
                          budget=parse_budget(budget), adaptive_k=adaptive_k or None,
                          probe_limit=probe_limit or None, max_new_tokens=max_new_tokens, device=device)
    document = run_matrix(config)
    typer.echo(json.dumps(document["headline"], indent=1))
    typer.echo(f"wrote {out}/defense.json")
    return EXIT_OK
