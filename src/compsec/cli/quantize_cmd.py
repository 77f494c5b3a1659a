"""``compsec quantize MODEL --format nf4 --protect auto --budget 5% --out DIR``: safety-aware mixed precision."""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("quantize")
def quantize(
    model: str = typer.Argument(..., help="Model folder (or .safetensors / .gguf) to quantize."),
    out: str = typer.Option(..., "--out", help="Folder for the bitsandbytes model (loads with from_pretrained); "
                            "a .gguf file for gguf:TYPE."),
    format: str = typer.Option("nf4", "--format", help="bitsandbytes format: nf4, fp4 or int8; or gguf:TYPE "
                               "(llama.cpp's quantizer, e.g. gguf:q4_k_m; --protect does not apply)."),
    protect: str = typer.Option("auto", help="'auto' (KL ranking), 'none', or comma-separated weight names."),
    budget: str = typer.Option("5%", help="auto: share of quantizable parameters kept unquantized."),
    texts: int = typer.Option(24, min=1, help="auto: generic texts the KL ranking is measured on."),
    device: str = typer.Option("cpu", help="Torch device for the ranking, e.g. cpu or cuda:0."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
) -> int:
    """Quantize with bitsandbytes, keeping the most behaviour-sensitive tensors in full precision."""
    from compsec.cli import preflight
    from compsec.defend.mixed import parse_budget
    from compsec.defend.quantize import QuantizeConfig, quantize_folder
    from compsec.outputs import staged_folder

    if format.strip().lower().startswith("gguf:"):
        from compsec.cli.quantize_gguf import quantize_to_gguf

        quantize_to_gguf(model, out, format.strip(), force)
        return EXIT_OK
    preflight.check_output_folder(out, force=force)
    preflight.device(device)
    preflight.model_input(model, tokenizer=protect.strip() == "auto")
    config = QuantizeConfig(format=format.strip().lower(), protect=protect, budget=parse_budget(budget),
                            texts=texts)
    with staged_folder(out) as staging:
        plan = quantize_folder(model, staging, config, device=device)
    typer.echo(json.dumps({"format": plan.format, "protected": list(plan.protected),
                           "kept_fraction": plan.kept_fraction}))
    typer.echo(f"wrote {out}")
    return EXIT_OK
