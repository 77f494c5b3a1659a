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
                               "an llm-compressor variant (gptq-w4a16, awq-w4a16, fp8-dynamic, sparsegpt-50...) "
                               "or gguf:TYPE (llama.cpp's own file, e.g. gguf:q4_k_m)."),
    json_out: str = typer.Option(None, "--json", help="Also write the rows as JSON to this file."),
    top: int = typer.Option(20, min=0, help="Rows to print (all rows go to --json)."),
) -> int:
    """Rank MODEL's quantizable tensors by relative quantization error under --format."""
    from rich.console import Console
    from rich.table import Table

    from compsec import formats
    from compsec.cli.preflight import model_input, report_files
    from compsec.formats.apply import layer_report
    from compsec.llmc.layers import llmc_layer_report
    from compsec.llmc.recipes import RECIPES
    from compsec.models.io import load_model
    from compsec.models.variant_layers import gguf_layer_report, json_row
    from compsec.outputs import write_report

    report_files(json=json_out)
    lowered = format.strip().lower()
    gguf = lowered.startswith("gguf:")
    external = lowered in RECIPES or gguf  # weights written by another tool: no preimage widths
    if gguf:
        from compsec.models.gguf_quantize import llama_type

        fmt_name = f"gguf:{llama_type(lowered[len('gguf:'):])}"
    else:
        fmt_name = lowered if external else formats.get(format).name
    model_input(model, tokenizer=external)
    if gguf:
        rows = gguf_layer_report(model, fmt_name[len("gguf:"):])
    elif external:  # calibration-based: the weights llm-compressor saved
        rows = llmc_layer_report(model, fmt_name)
    else:
        loaded, _ = load_model(model)
        rows = layer_report(loaded, formats.get(format))
    table = Table(title=f"{len(rows)} tensors under {fmt_name}, largest relative error first"
                  + (" (width: no preimage; pinned: set to zero)" if external else ""))
    for column in ("tensor", "rel. error", "|w| median", "|w| p99", "width median", "width p90", "pinned"):
        table.add_column(column)
    for r in rows[:top]:
        table.add_row(r.tensor, f"{r.relative_error:.4f}", f"{r.abs_median:.3g}", f"{r.abs_p99:.3g}",
                      f"{r.width_median:.3g}", f"{r.width_p90:.3g}", f"{r.pinned:.1%}")
    Console().print(table)
    if json_out:
        write_report(json_out, json.dumps({"format": fmt_name, "tensors": [json_row(r) for r in rows]}, indent=1))
    return EXIT_OK
