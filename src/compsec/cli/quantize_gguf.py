"""``compsec quantize MODEL --format gguf:q4_k_m --out FILE.gguf``: llama.cpp's quantizer, the file a variant runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from compsec.errors import InputError

PREFIX = "gguf:"


def check_gguf_out(out: str, force: bool) -> Path:
    """``out`` must be a ``.gguf`` path that is new (or ``force``d) in a writable folder; InputError otherwise."""
    from compsec.outputs import check_output_file

    path = check_output_file(out, "--out")
    if path.suffix.lower() != ".gguf":
        raise InputError(f"--out {out}: a GGUF format writes one file; give a path ending in .gguf")
    if path.exists() and not force:
        raise InputError(f"--out {out}: file exists; choose a new path or pass --force to replace it")
    return path


def quantize_to_gguf(model: str, out: str, format: str, force: bool) -> None:
    """Validate everything, then convert ``model`` and quantize it with llama.cpp to ``format`` (``gguf:TYPE``)."""
    from compsec.cli import preflight
    from compsec.models.gguf_quantize import llama_type, quantized_gguf
    from compsec.models.io import load_model

    type_name = llama_type(format[len(PREFIX):])
    path = check_gguf_out(out, force)
    preflight.model_input(model, tokenizer=True)
    loaded, tokenizer = load_model(model)
    if tokenizer is None:
        raise InputError(f"{model}: no tokenizer files; a GGUF needs the vocabulary, put them next to the weights")
    cached = quantized_gguf(loaded, tokenizer, type_name, out=path)
    typer.echo(json.dumps({"format": PREFIX + type_name, "bytes": path.stat().st_size, "cached": str(cached)}))
    typer.echo(f"wrote {path}")
