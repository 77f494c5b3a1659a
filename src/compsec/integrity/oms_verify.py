"""Verify a model against an OMS bundle (OpenSSF model signing), naming what changed down to the tensor.

The verdict is ``model_signing``'s own (its public ``verifying.Config``, what ``model_signing verify`` runs), so
compsec never accepts a bundle that library rejects. Only when it fails does compsec explain why: the
signature itself does not verify (wrong key, altered bundle), or the signed statement is read back and every
file is compared with ``predicate.resources``; a changed safetensors / GGUF file is opened for its tensors when
the bundle carries compsec's per-tensor extension (:mod:`compsec.integrity.oms_sign`).
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.manifest_verify import ManifestChange, compare_files
from compsec.integrity.oms_chain import chain_changes
from compsec.integrity.oms_sign import TENSOR_EXTENSION, model_file, require_model_signing


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def _verifiers(key: Path | None, chain: tuple[Path, ...]):
    """(model_signing's verifying.Config, the low-level Verifier) for a public key or a certificate chain."""
    from model_signing import verifying
    from model_signing._signing import sign_certificate, sign_ec_key

    for given in ([key] if key else []) + list(chain):
        if not given.is_file():
            raise InputError(f"{given}: no such key or certificate file; check the path")
    try:
        if key is not None:
            return verifying.Config().use_elliptic_key_verifier(public_key=key), sign_ec_key.Verifier(key)
        return (verifying.Config().use_certificate_verifier(certificate_chain=chain),
                sign_certificate.Verifier(list(chain)))
    except (ValueError, TypeError) as err:
        raise InputError(f"{key or chain[0]}: not a usable PEM public key or certificate ({_one_line(err)})")


def _read_bundle(signature: Path):
    from model_signing._signing import sign_sigstore_pb

    if not signature.is_file():
        raise InputError(f"{signature}: no such signature file; check the path")
    try:
        return sign_sigstore_pb.Signature.read(signature)
    except Exception as err:  # noqa: BLE001  (protobuf / JSON parsers raise many types on a damaged file)
        raise InputError(f"{signature}: not an OMS / Sigstore bundle ({_one_line(err)}); re-sign the model")


def _actual_digests(path: Path, serialization: dict) -> dict[str, str] | None:
    """sha256 of every file as model_signing hashes it for this serialization; None for shard serialization."""
    from model_signing import hashing

    if serialization.get("method") != "files":
        return None
    ignored = serialization.get("ignore_paths", [])
    config = hashing.Config().use_file_serialization(
        hashing_algorithm=serialization["hash_type"], allow_symlinks=serialization["allow_symlinks"],
        ignore_paths=ignored)
    config.add_ignored_paths(model_path=path, paths=ignored)
    return {rd.identifier: rd.digest.digest_hex for rd in config.hash(path).resource_descriptors()}


def _file_changes(path: Path, statement: dict) -> list[ManifestChange]:
    predicate = statement["predicate"]
    expected = {resource["name"]: resource["digest"] for resource in predicate["resources"]}
    actual = _actual_digests(path, predicate["serialization"])
    if actual is None:
        return []
    per_tensor = (predicate.get(TENSOR_EXTENSION) or {}).get("files", {})
    present = {name: model_file(path, name) for name in actual}
    return compare_files(expected, present, actual.__getitem__, per_tensor)


def verify_signed_model(path: str | Path, signature: str | Path, key: str | Path | None = None,
                        chain: tuple[str | Path, ...] = (), source: str | Path | None = None) -> list[ManifestChange]:
    """Every reason ``path`` fails its OMS bundle ``signature``; empty when model_signing verifies it.

    Give the signer's PEM public ``key`` (key-signed bundles) or the trusted ``chain`` of certificates
    (certificate-signed bundles). A failing signature is one change of level ``"signature"``; a tampered
    model gives one change per changed / missing / extra file and per changed tensor. Once the signature holds,
    a signed provenance chain is checked too (:func:`compsec.integrity.oms_chain.chain_changes`, against
    ``source`` when given).
    """
    require_model_signing()
    from cryptography.exceptions import InvalidSignature
    from OpenSSL.crypto import X509StoreContextError

    path, signature = Path(path), Path(signature)
    if not path.exists() or path.is_symlink():
        raise InputError(f"{path}: no such model file or folder (symlinks refused); check the path")
    if (key is None) == (not chain):
        raise InputError("give either the signer's public key (--key) or the trusted certificate chain (--chain)")
    config, verifier = _verifiers(Path(key) if key else None, tuple(map(Path, chain)))
    bundle = _read_bundle(signature)
    failures = (ValueError, KeyError, InvalidSignature, X509StoreContextError)
    verdict = None
    try:
        config.verify(path, signature)
    except failures as err:
        verdict = _one_line(err)
    try:
        _, payload = verifier._verify_signed_content(bundle)  # the signed statement, authenticated
        statement = json.loads(payload)
    except failures as err:
        return [ManifestChange("invalid", "signature", signature.name, detail=_one_line(err) or verdict or "")]
    if verdict is None:
        return chain_changes(path, statement, source)
    changes = _file_changes(path, statement) if "serialization" in statement.get("predicate", {}) else []
    return changes or [ManifestChange("failed", "signature", signature.name, detail=verdict)]
