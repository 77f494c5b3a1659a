"""``compsec manifest create PATH -o manifest.json`` and ``compsec manifest verify PATH manifest.json``.

verify exits 0 when every file and tensor matches, 1 naming each changed / missing / extra file and tensor
(one line each), 2 when the manifest or the model cannot be read.
"""

from __future__ import annotations

import typer

from compsec.cli.main import EXIT_FINDINGS, EXIT_OK, app

manifest_app = typer.Typer(help="Per-file and per-tensor digests (in-toto Statement v1) and their verification.",
                           no_args_is_help=True)
app.add_typer(manifest_app, name="manifest")


@manifest_app.command("create")
def create(
    path: str = typer.Argument(..., help="A model folder or a single .safetensors / .gguf file."),
    output: str = typer.Option("manifest.json", "-o", "--output", help="Where to write the manifest JSON."),
) -> None:
    """Hash every file (sha256) and every tensor (raw bytes + dtype + shape) of PATH into a manifest."""
    from compsec.cli.preflight import check_output_file
    from compsec.integrity.manifest import write_manifest
    from compsec.integrity.path_policy import checked_input

    check_output_file(output, "--output")
    checked_input(path)
    manifest = write_manifest(path, output)
    n_tensors = sum(len(entry.get("tensors", {})) for entry in manifest["predicate"]["files"].values())
    typer.echo(f"wrote {output}: {len(manifest['subject'])} files, {n_tensors} tensors")
    raise typer.Exit(EXIT_OK)


@manifest_app.command("verify")
def verify(
    path: str = typer.Argument(..., help="The model folder or file to check."),
    manifest: str = typer.Argument(..., help="A manifest written by `compsec manifest create`."),
) -> None:
    """Check PATH against MANIFEST; print one line per changed, missing or extra file and tensor."""
    from compsec.integrity.manifest import load_manifest
    from compsec.integrity.manifest_verify import verify_manifest
    from compsec.integrity.path_policy import checked_input

    checked_input(path)
    changes = verify_manifest(path, load_manifest(manifest), exclude=(manifest,))
    report_changes(changes, path, manifest)


def report_changes(changes: list, path: str, reference: str) -> None:
    """Print one line per change and exit 1, or print that ``path`` matches ``reference`` and exit 0."""
    for change in changes:
        typer.echo(change.line())
    if changes:
        typer.echo(f"{len(changes)} differences from {reference}", err=True)
        raise typer.Exit(EXIT_FINDINGS)
    typer.echo(f"verified: {path} matches {reference}")
    raise typer.Exit(EXIT_OK)
