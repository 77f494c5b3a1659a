"""Sign a model with OpenSSF model signing (``model_signing``): an OMS bundle that ``model_signing verify`` checks.

The bundle is a Sigstore bundle holding one DSSE envelope over an in-toto Statement v1 whose predicate
(``https://model_signing/signature/v1.0``) lists every file's sha256 in ``predicate.resources``. compsec adds its
per-tensor digests (:mod:`compsec.integrity.digests`, the same entries as ``compsec manifest``) under one more
predicate key, :data:`TENSOR_EXTENSION`, inside the same signed statement. The OMS v1.0 predicate spec says
verifiers ignore fields they do not know, so ``model_signing`` verifies the bundle unchanged, while
``compsec verify`` can name the tensor that changed, not only the file::

    "predicate": {"serialization": {...}, "resources": [{"name": "model.safetensors", "digest": ...}, ...],
                  "https://compsec.dev/tensor-manifest/v1": {"digest_scheme": "compsec-tensor-v1",
                      "files": {"model.safetensors": {"size": 123, "tensors": {name: {dtype, shape, sha256}}}}}}

Offline signing takes an elliptic-curve private key (P-256/384/521, PEM) or a key plus its X.509 signing
certificate and chain. A model with a compsec provenance record also gets its chain (source digest → recipe →
output digests) signed: :mod:`compsec.integrity.oms_chain`. Keyless Sigstore signing needs the network: use ``model_signing sign sigstore`` there.
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec import __version__
from compsec.errors import InputError, MissingDependencyError
from compsec.integrity.manifest import PREDICATE_TYPE, file_entry
from compsec.integrity.oms_chain import PROVENANCE_EXTENSION, chain_extension

TENSOR_EXTENSION = PREDICATE_TYPE
DIGEST_SCHEME = "compsec-tensor-v1"
TENSOR_SUFFIXES = (".safetensors", ".gguf")


def require_model_signing():
    """Import ``model_signing`` (the ``sign`` extra) or raise with the install line."""
    try:
        import model_signing
        import OpenSSL  # noqa: F401  (model_signing's certificate path and CLI need pyopenssl)
    except ImportError as err:
        raise MissingDependencyError(err.name or "model_signing", "sign", "OpenSSF model signing") from None
    return model_signing


def model_file(root: Path, name: str) -> Path:
    """The file behind an OMS resource name (``"."`` names the model itself when it is a single file)."""
    return root if name == "." else root / name


def tensor_extension(root: Path, names: list[str]) -> dict:
    """compsec's per-tensor predicate for the safetensors / GGUF files among the OMS resource ``names``."""
    files = {name: file_entry(model_file(root, name)) for name in names
             if model_file(root, name).suffix in TENSOR_SUFFIXES}
    return {"digest_scheme": DIGEST_SCHEME, "tool": {"name": "compsec", "version": __version__}, "files": files}


def _signer(key: Path, certificate: Path | None, chain: tuple[Path, ...]):
    from cryptography.exceptions import UnsupportedAlgorithm
    from model_signing._signing import sign_certificate, sign_ec_key

    try:
        if certificate is None:
            return sign_ec_key.Signer(key)
        return sign_certificate.Signer(key, certificate, list(chain))
    except (ValueError, TypeError, UnsupportedAlgorithm, OSError) as err:
        raise InputError(f"{key}: not a usable elliptic-curve private key or certificate "
                         f"({' '.join(str(err).split())[:120]}); give a PEM P-256/384/521 key") from None


def _payload(path: Path, signature: Path):
    """The OMS payload of ``path`` (the signature file and git paths ignored) with compsec's extension added."""
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement
    from model_signing import hashing
    from model_signing._signing import signing

    inside = path.is_dir() and signature.resolve().is_relative_to(path.resolve())
    ignored = [signature.resolve().relative_to(path.resolve())] if inside else []
    manifest = hashing.Config().set_ignored_paths(paths=ignored, ignore_git_paths=True).hash(path)
    payload = signing.Payload(manifest)
    body = json.loads(json_format.MessageToJson(payload.statement.pb))
    names = [resource["name"] for resource in body["predicate"]["resources"]]
    body["predicate"][TENSOR_EXTENSION] = tensor_extension(path, names)
    chain = chain_extension(path)
    if chain is not None:
        body["predicate"][PROVENANCE_EXTENSION] = chain
    payload.statement = statement.Statement(subjects=list(payload.statement.pb.subject),
                                            predicate_type=body["predicateType"], predicate=body["predicate"])
    tensor_files = body["predicate"][TENSOR_EXTENSION]["files"].values()
    return payload, len(names), sum(len(entry.get("tensors", {})) for entry in tensor_files)


def sign_model(path: str | Path, key: str | Path, signature: str | Path,
               certificate: str | Path | None = None, chain: tuple[str | Path, ...] = ()) -> tuple[int, int]:
    """Write the OMS bundle of the model file or folder ``path`` to ``signature``; return (files, tensors).

    ``key`` is a PEM elliptic-curve private key; with ``certificate`` (its X.509 signing certificate, PEM) and
    ``chain`` (intermediate / root certificates) the bundle carries the certificate chain instead of a key hint.
    """
    require_model_signing()
    path, signature = Path(path), Path(signature)
    if not path.exists() or path.is_symlink():
        raise InputError(f"{path}: no such model file or folder (symlinks refused); check the path")
    if chain and certificate is None:
        raise InputError("a certificate chain needs the signing certificate too: add --certificate")
    for given in (Path(key), *([Path(certificate)] if certificate else []), *map(Path, chain)):
        if not given.is_file():
            raise InputError(f"{given}: no such key or certificate file; check the path")
    signer = _signer(Path(key), Path(certificate) if certificate else None, tuple(map(Path, chain)))
    payload, n_files, n_tensors = _payload(path, signature)
    signer.sign(payload).write(signature)
    return n_files, n_tensors
