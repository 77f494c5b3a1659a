"""``compsec layers MODEL --format nf4``: rank tensors by relative quantization error, with the weight
magnitudes and preimage interval widths of each (wider intervals leave an attacker more room)."""

from __future__ import annotations

import json

import typer

from compsec.cli.main import EXIT_OK, app


@app.command("layers")
def layers(
    model: str = typer.Argument(..., help="Model folder (safetensors + config.json), .safetensors or .gguf."),
    format: str = typer.Option("nf4", "--format", help="A registered format name, e.g. nf4, int8, q4_0, int4-rtn, "
                               "or an llm-compressor variant (gptq-w4a16, awq-w4a16, fp8-dynamic, sparsegpt-50...)."),
    json_out: str = typer.Option(None, "--json", help="Also write the rows as JSON to this file."),
    top: int = typer.Option(20, min=0, help="Rows to print (all rows go to --json)."),
) -> int:
    """Rank MODEL's quantizable tensors by relative quantization error under --format."""
    from rich.console import Console
    from rich.table import Table

    from compsec import formats
    from compsec.cli.preflight import model_input, report_files
    from compsec.formats.apply import layer_report
    from compsec.llmc.layers import json_row, llmc_layer_report
    from compsec.llmc.recipes import RECIPES
    from compsec.models.io import load_model
    from compsec.outputs import write_report

    report_files(json=json_out)
    llmc = format.strip().lower() in RECIPES
    fmt_name = format.strip().lower() if llmc else formats.get(format).name
    model_input(model, tokenizer=llmc)
    if llmc:  # calibration-based: the weights llm-compressor saved, no preimage widths
        rows = llmc_layer_report(model, fmt_name)
    else:
        loaded, _ = load_model(model)
        rows = layer_report(loaded, formats.get(format))
    table = Table(title=f"{len(rows)} tensors under {fmt_name}, largest relative error first"
                  + (" (width: no preimage; pinned: set to zero)" if llmc else ""))
    for column in ("tensor", "rel. error", "|w| median", "|w| p99", "width median", "width p90", "pinned"):
        table.add_column(column)
    for r in rows[:top]:
        table.add_row(r.tensor, f"{r.relative_error:.4f}", f"{r.abs_median:.3g}", f"{r.abs_p99:.3g}",
                      f"{r.width_median:.3g}", f"{r.width_p90:.3g}", f"{r.pinned:.1%}")
    Console().print(table)
    if json_out:
        write_report(json_out, json.dumps({"format": fmt_name, "tensors": [json_row(r) for r in rows]}, indent=1))
    return EXIT_OK
