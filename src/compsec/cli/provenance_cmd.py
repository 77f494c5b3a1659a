"""``compsec provenance verify ARTIFACT --source ORIGINAL`` and ``compsec provenance show ARTIFACT``.

verify exits 0 when the record, the artifact and the source agree (and re-derivation matched where the
operation allows it), 1 with one line per mismatch, 2 when there is no readable record or input.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app
from compsec.errors import InputError

provenance_app = typer.Typer(help="Provenance records of compsec-produced models: show and verify them.",
                             no_args_is_help=True)
app.add_typer(provenance_app, name="provenance")


@provenance_app.command("verify")
def verify(
    artifact: str = typer.Argument(..., help="A model folder or .safetensors file carrying a provenance record."),
    source: str = typer.Option(..., "--source", help="The original model the artifact claims to come from."),
    via: str = typer.Option(None, "--via", help="GGUF only: the converter's --outtype llama-quantize read "
                            "(f16, bf16, f32); the source is rounded to it before re-quantizing."),
) -> None:
    """Check the artifact's tensors and the source's digest against the record; re-derive when possible.

    A .gguf (legacy or K-quant types; no record needed) is checked by re-quantizing every source tensor with
    llama.cpp's arithmetic, a bitsandbytes-serialized folder (4-bit / 8-bit) with the library that wrote it:
    faithful (exit 0), not derived or cannot tell (exit 1). A compressed-tensors folder (llm-compressor: GPTQ,
    AWQ, FP8...) gets its group scales recomputed from the source and, when it carries its recipe and calibration
    texts, the build re-run and compared tensor by tensor."""
    from compsec.integrity.ct_provenance import is_compressed_tensors
    from compsec.integrity.path_policy import checked_input
    from compsec.integrity.provenance_verify import verify_provenance
    from compsec.integrity.serialized_provenance import quant_method

    if artifact.endswith(".gguf"):
        verify_gguf(artifact, source, via)
    if via is None and is_compressed_tensors(artifact):
        verify_compressed_tensors(artifact, source)
    method = quant_method(checked_input(artifact, "model file or folder"))
    if method is not None and via is None:
        verify_serialized(artifact, source, method)
    if via is not None:
        raise InputError(f"--via applies to .gguf files only; {artifact} is re-derived from its provenance record")

    check = verify_provenance(artifact, source)
    for line in check.problems:
        typer.echo(line)
    for line in check.notes:
        typer.echo(f"note: {line}")
    record = check.record
    if check.problems:
        typer.echo(f"{len(check.problems)} provenance mismatches for {artifact}", err=True)
        raise typer.Exit(EXIT_FINDINGS)
    typer.echo(f"verified: {artifact} = {record.operation} {json.dumps(record.parameters, sort_keys=True)} "
               f"of {source}")
    raise typer.Exit(EXIT_OK)


def verify_gguf(artifact: str, source: str, via: str | None = None) -> None:
    """Print each differing / unchecked tensor and the verdict of :func:`gguf_provenance`; exit 0 if faithful."""
    from compsec.integrity.gguf_provenance import gguf_provenance

    _print_verdict(gguf_provenance(artifact, source, via), artifact, source)


def verify_serialized(artifact: str, source: str, method: str) -> None:
    """The same for a quantized Hugging Face folder (bitsandbytes-serialized, ...): re-quantize and compare."""
    from compsec.integrity.serialized_provenance import serialized_provenance

    _print_verdict(serialized_provenance(Path(artifact), source, method), artifact, source)


def _print_verdict(result, artifact: str, source: str) -> None:
    """One line per differing / unchecked tensor, then the verdict; exit 0 only when faithful."""
    for line in result.differs + result.unchecked:
        typer.echo(line)
    typer.echo(f"{result.verdict}: {artifact} vs {source} ({result.checked} tensors re-derived and compared)")
    if result.verdict == "consistent (importance matrix)":
        typer.echo("note: llama-quantize used an importance matrix, so the scales were not re-derived; every code "
                   "is the source weight's code under the stored scales")
        raise typer.Exit(EXIT_OK)
    if result.verdict != "faithful":
        raise typer.Exit(EXIT_FINDINGS)
    typer.echo("note: a source change inside its quantization box yields the same bytes, so it is faithful too")
    raise typer.Exit(EXIT_OK)


def verify_compressed_tensors(artifact: str, source: str) -> None:
    """Print each differing tensor, the notes and the verdict of :func:`ct_provenance`; exit 0 if faithful."""
    from compsec.integrity.ct_provenance import ct_provenance

    result = ct_provenance(artifact, source)
    for line in result.differs:
        typer.echo(line)
    for line in result.notes:
        typer.echo(f"note: {line}")
    typer.echo(f"{result.verdict}: {artifact} vs {source} ({result.scale_checked} tensors scale-checked, "
               f"{result.rerun_checked} re-run and compared)")
    raise typer.Exit(EXIT_OK if result.verdict == "faithful" else EXIT_FINDINGS)


@provenance_app.command("show")
def show(artifact: str = typer.Argument(..., help="A model folder or .safetensors file.")) -> None:
    """Print the provenance record (the digests of output tensors are summarised by count)."""
    from compsec.integrity.provenance_verify import read_provenance

    record = json.loads(read_provenance(artifact).to_json())
    record["output_tensor_digests"] = f"{len(record['output_tensor_digests'])} tensors"
    typer.echo(json.dumps(record, indent=2, sort_keys=True))
    raise typer.Exit(EXIT_OK)
