"""The provenance chain inside an OMS bundle: source digest → recipe → output digests, signed with the model.

When the folder (or file) being signed carries a compsec provenance record (written by ``compsec quantize`` /
``prune`` / ``harden`` / ``distill``, see :mod:`compsec.integrity.provenance`), ``compsec sign`` puts the whole
record under one more predicate key, :data:`PROVENANCE_EXTENSION`, of the signed in-toto statement::

    "https://compsec.dev/provenance-chain/v1": {"source_manifest_digest": "…", "operation": "prune",
        "parameters": {…}, "seed": null, "output_tensor_digests": {name: sha256, …}, "schema": …}

``model_signing`` ignores the key (the OMS predicate spec says verifiers skip unknown fields). ``compsec verify``
checks the chain once the signature holds: every signed output tensor digest must match the model's tensors, and
with ``--source ORIGINAL`` the signed source digest must equal ORIGINAL's manifest content digest
(:func:`compsec.integrity.manifest.content_digest`, what the record stores).
"""

from __future__ import annotations

import json
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.manifest_verify import ManifestChange
from compsec.integrity.provenance import METADATA_KEY, SIDECAR_NAME, ProvenanceRecord, artifact_tensor_digests

PROVENANCE_EXTENSION = "https://compsec.dev/provenance-chain/v1"


def _has_record(path: Path) -> bool:
    from compsec.integrity.safetensors_metadata import read_metadata

    folder = path if path.is_dir() else path.parent
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    return (folder / SIDECAR_NAME).is_file() or any(
        read_metadata(f).get(METADATA_KEY) for f in weights if f.suffix == ".safetensors")


def chain_extension(path: Path) -> dict | None:
    """The provenance record of ``path`` as the signed predicate entry; None when it has none.

    A record whose copies disagree or that is damaged raises InputError: such a model is not signed."""
    from compsec.integrity.provenance_verify import read_provenance

    if not _has_record(path):
        return None
    return json.loads(read_provenance(path).to_json())


def chain_changes(path: Path, statement: dict, source: str | Path | None) -> list[ManifestChange]:
    """What breaks the signed chain of ``statement`` for the model at ``path`` (and ``source``, when given)."""
    from compsec.integrity.manifest import content_digest, create_manifest

    signed = statement.get("predicate", {}).get(PROVENANCE_EXTENSION)
    if signed is None:
        if source is not None:
            raise InputError("the bundle carries no provenance chain, so --source cannot be checked; sign a model "
                             "written by compsec quantize / prune / harden (it records its source)")
        return []
    record = ProvenanceRecord.from_json(json.dumps(signed), "signed provenance chain")
    actual = artifact_tensor_digests(path)
    changes = [ManifestChange("missing", "tensor", "provenance chain", name, "signed output not in the model")
               for name in record.output_tensor_digests if name not in actual]
    changes += [ManifestChange("changed", "tensor", "provenance chain", name, "differs from the signed output")
                for name, digest in record.output_tensor_digests.items() if name in actual and actual[name] != digest]
    if source is not None and content_digest(create_manifest(source)) != record.source_manifest_digest:
        changes.append(ManifestChange("changed", "source", str(source),
                                      detail=f"not the source this model was made from by {record.operation}"))
    return changes
