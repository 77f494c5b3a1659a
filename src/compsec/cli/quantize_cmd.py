"""``compsec quantize MODEL --format nf4 --protect auto --budget 5% --out DIR``: safety-aware mixed precision."""

from __future__ import annotations

import json

import typer

import compsec.llmc.variants  # noqa: F401  (registers gptq-w4a16, awq-w4a16 ... for audit / lm-eval / serve)
from compsec.cli.main import EXIT_OK, app
from compsec.llmc.calibration import Calibration
from compsec.llmc.recipes import RECIPES


@app.command("quantize")
def quantize(
    model: str = typer.Argument(..., help="Model folder (or .safetensors / .gguf) to quantize."),
    out: str = typer.Option(..., "--out", help="Folder for the bitsandbytes or llm-compressor model (loads with "
                            "from_pretrained); a .gguf file for gguf:TYPE."),
    format: str = typer.Option("nf4", "--format", help="bitsandbytes format (nf4, fp4, int8), an llm-compressor "
                               "variant (gptq-w4a16, awq-w4a16, w8a8-int8, fp8-dynamic, sparsegpt-50...), or "
                               "gguf:TYPE (llama.cpp's quantizer, e.g. gguf:q4_k_m; --protect does not apply)."),
    protect: str = typer.Option("auto", help="'auto' (KL ranking), 'none', or comma-separated weight names."),
    budget: str = typer.Option("5%", help="auto: share of quantizable parameters kept unquantized."),
    texts: int = typer.Option(24, min=1, help="auto: generic texts the KL ranking is measured on."),
    device: str = typer.Option("cpu", help="Torch device for the ranking, e.g. cpu or cuda:0."),
    force: bool = typer.Option(False, "--force", help="Replace OUT even when it already holds files."),
    calibration: str = typer.Option("builtin", help="llm-compressor: JSONL of {\"text\": ...} lines, or "
                                    "'builtin' (the tiny assistant's training conversations)."),
    calibration_samples: int = typer.Option(64, min=1, help="llm-compressor: calibration texts used."),
    calibration_length: int = typer.Option(128, min=1, help="llm-compressor: tokens kept per text."),
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
    if format.strip().lower() in RECIPES:
        return _llm_compressor(model, out, format, Calibration(calibration, calibration_samples, calibration_length))
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


def _llm_compressor(model: str, out: str, name: str, calibration: Calibration) -> int:
    """The llm-compressor folder of ``name`` (compressed-tensors; built once in the cache) written to ``out``."""
    from compsec.cli import preflight
    from compsec.llmc.calibration import calibration_texts
    from compsec.llmc.export import export_variant
    from compsec.outputs import staged_folder

    preflight.model_input(model, tokenizer=True)
    calibration_texts(calibration)  # a bad calibration file is refused before anything runs
    with staged_folder(out) as staging:
        summary = export_variant(model, name.strip().lower(), calibration, staging)
    typer.echo(json.dumps(summary))
    typer.echo(f"wrote {out}")
    return EXIT_OK
