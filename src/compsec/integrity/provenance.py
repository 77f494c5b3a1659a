"""Provenance records: which source, operation, parameters and seed produced a model artifact.

:func:`record_provenance` is what compsec's transforming features (quantize, prune, harden, distill, attack)
call after writing their output folder. The record holds the source's manifest content digest
(:func:`compsec.integrity.manifest.content_digest`), the operation, its parameters (JSON), the seed, the compsec
version, optionally the creation time, and the sha256 digest of every output tensor. It is written twice: into
the ``__metadata__`` of every output ``.safetensors`` file under the key ``"compsec.provenance"`` (a JSON string;
tensor bytes untouched, see :mod:`compsec.integrity.safetensors_metadata`) and as ``provenance.json`` beside them.

Operations that :mod:`compsec.integrity.provenance_verify` can re-derive from the source alone:
``"copy"`` (no parameters), ``"cast"`` (``{"dtype": "bfloat16"}``: floating tensors cast) and
``"quantize-sim"`` (``{"format": "nf4", "tensors": [names]}``: each named tensor replaced by
``dequantize(quantize(w))`` cast back to its dtype; without ``"tensors"``, the architecture table's
quantizable weights of the source).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from compsec import __version__
from compsec.errors import InputError

METADATA_KEY = "compsec.provenance"
SIDECAR_NAME = "provenance.json"
SCHEMA = "compsec-provenance/v1"


@dataclass(frozen=True)
class ProvenanceRecord:
    """See the module docstring. ``output_tensor_digests`` maps tensor name → sha256 (compsec-tensor-v1)."""

    source_manifest_digest: str
    operation: str
    parameters: dict
    seed: int | None
    output_tensor_digests: dict[str, str]
    compsec_version: str = __version__
    created: str | None = None
    schema: str = SCHEMA
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): identical records give identical strings."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, where: str = "provenance record") -> ProvenanceRecord:
        """Parse and validate a record; InputError saying what is wrong otherwise."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise InputError(f"{where}: not valid JSON; the provenance record is damaged, re-record it") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise InputError(f"{where}: not a {SCHEMA} record; re-record it with this compsec version")
        try:
            record = cls(**data)
        except TypeError as err:
            raise InputError(f"{where}: unexpected or missing fields ({err}); re-record it") from None
        _check_types(record, where)
        return record


def _check_types(record: ProvenanceRecord, where: str) -> None:
    digests = record.output_tensor_digests
    ok = (isinstance(record.source_manifest_digest, str) and isinstance(record.operation, str)
          and isinstance(record.parameters, dict) and (record.seed is None or isinstance(record.seed, int))
          and isinstance(digests, dict) and all(isinstance(v, str) for v in digests.values()))
    if not ok:
        raise InputError(f"{where}: a field has the wrong type; the provenance record is damaged, re-record it")


def artifact_tensor_digests(artifact: str | Path) -> dict[str, str]:
    """name → sha256 of every tensor of a model folder or file (its safetensors files, else its GGUF files)."""
    from compsec.integrity.digests import tensor_digests

    artifact = Path(artifact)
    if not artifact.exists():
        raise InputError(f"{artifact}: no such file or folder; check the path")
    files = [artifact] if artifact.is_file() else sorted(artifact.glob("*.safetensors")) or sorted(
        artifact.glob("*.gguf"))
    if not files or any(tensor_digests(f) is None for f in files):
        raise InputError(f"{artifact}: no .safetensors or .gguf weights found; provenance covers model weights")
    return {name: digest.sha256 for f in files for name, digest in tensor_digests(f).items()}


def write_provenance(out_dir: str | Path, record: ProvenanceRecord) -> None:
    """Embed ``record`` in every output safetensors header and write the ``provenance.json`` sidecar."""
    from compsec.integrity.safetensors_metadata import set_metadata

    out_dir = Path(out_dir)
    folder = out_dir if out_dir.is_dir() else out_dir.parent
    for weights in [out_dir] if out_dir.is_file() else sorted(out_dir.glob("*.safetensors")):
        if weights.suffix == ".safetensors":
            set_metadata(weights, METADATA_KEY, record.to_json())
    (folder / SIDECAR_NAME).write_text(json.dumps(json.loads(record.to_json()), indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")


def record_provenance(out_dir: str | Path, source_path: str | Path, operation: str, params: dict | None = None,
                      seed: int | None = None, created: bool = True) -> ProvenanceRecord:
    """Describe how ``out_dir`` was made from ``source_path`` and write the record (see the module docstring).

    ``params`` must be JSON-serialisable (e.g. ``{"format": "nf4"}``). ``created=False`` omits the timestamp
    so that re-running a deterministic operation yields a byte-identical artifact.
    """
    from compsec.integrity.manifest import content_digest, create_manifest

    params = dict(params or {})
    try:
        json.dumps(params)
    except (TypeError, ValueError) as err:
        raise InputError(f"provenance parameters must be JSON-serialisable ({err}); convert them first") from None
    if seed is not None and not isinstance(seed, int):
        raise InputError(f"seed must be an int or None, got {type(seed).__name__}")
    when = datetime.now(timezone.utc).isoformat(timespec="seconds") if created else None
    record = ProvenanceRecord(content_digest(create_manifest(source_path)), operation, params, seed,
                              artifact_tensor_digests(out_dir), created=when)
    write_provenance(out_dir, record)
    return record
