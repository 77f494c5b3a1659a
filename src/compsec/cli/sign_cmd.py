"""``compsec sign PATH --key K`` and ``compsec verify PATH --signature S --key PUB``: OpenSSF model signing.

The bundle is an OMS bundle that ``model_signing verify key`` accepts as is; it also carries compsec's
per-tensor digests, so verify names the changed tensor, not only the file. verify exits 0 when the model
matches (and its signed provenance chain, if any, holds; with --source, names that source), 1 naming each changed / missing / extra file and tensor (or a signature that does not verify),
2 when the key, certificate, bundle or model cannot be read.
"""

from __future__ import annotations

from typing import Annotated

import typer

from compsec.cli.main import EXIT_OK, app
from compsec.cli.manifest_cmd import report_changes


@app.command("sign")
def sign(
    path: str = typer.Argument(..., help="A model folder or a single model file to sign."),
    key: str = typer.Option(..., "--key", help="PEM elliptic-curve private key (P-256, P-384 or P-521)."),
    signature: str = typer.Option(None, "--signature", help="Where to write the bundle (default: PATH.sig)."),
    certificate: str = typer.Option(None, "--certificate", help="PEM signing certificate of KEY (optional)."),
    chain: Annotated[list[str] | None, typer.Option(
        "--chain", help="PEM certificates of the chain (repeat; with --certificate).")] = None,
) -> None:
    """Sign PATH offline into an OMS bundle (Sigstore bundle, DSSE, in-toto) with per-tensor digests."""
    from compsec.integrity.oms_sign import sign_model

    out = signature or path.rstrip("/") + ".sig"
    n_files, n_tensors = sign_model(path, key, out, certificate, tuple(chain or ()))
    typer.echo(f"wrote {out}: {n_files} files, {n_tensors} tensors signed")
    raise typer.Exit(EXIT_OK)


@app.command("verify")
def verify(
    path: str = typer.Argument(..., help="The model folder or file to check."),
    signature: str = typer.Option(..., "--signature", help="The OMS bundle (from compsec sign or model_signing)."),
    key: str = typer.Option(None, "--key", help="The signer's PEM public key (key-signed bundles)."),
    chain: Annotated[list[str] | None, typer.Option(
        "--chain", help="Trusted PEM certificates (certificate-signed bundles; repeat).")] = None,
    source: str = typer.Option(None, "--source", help="The original model: check that the signed provenance "
                               "chain names it as the source (needs a bundle with a chain)."),
) -> None:
    """Check PATH against an OMS bundle (and its signed provenance chain); one line per difference."""
    from compsec.integrity.oms_verify import verify_signed_model

    changes = verify_signed_model(path, signature, key, tuple(chain or ()), source)
    if source is not None and not changes:
        typer.echo(f"provenance chain: {path} was made from {source} (signed source digest matches)")
    report_changes(changes, path, signature)
