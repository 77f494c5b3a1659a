"""Check an artifact's provenance record against the artifact itself and against the claimed source.

Three checks, each adding one line per problem: (1) the record embedded in the safetensors headers and the
``provenance.json`` sidecar agree, and the artifact's tensors still have the recorded digests; (2) the source's
manifest content digest equals the recorded one; (3) for operations that are pure functions of the source
(``copy``, ``cast``, ``quantize-sim``; see :mod:`compsec.integrity.provenance`) the outputs are re-derived from
the source, one tensor at a time, and their digests compared. Other operations get a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.path_policy import checked_input, checked_sibling
from compsec.integrity.provenance import METADATA_KEY, SIDECAR_NAME, ProvenanceRecord, artifact_tensor_digests


@dataclass
class ProvenanceCheck:
    """``problems``: one line per mismatch (empty = verified); ``notes``: what was not or could not be checked."""

    record: ProvenanceRecord
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems


def read_provenance(artifact: str | Path) -> ProvenanceRecord:
    """The record of ``artifact`` (folder or file); InputError if absent, damaged, or if its copies disagree."""
    from compsec.integrity.safetensors_metadata import read_metadata

    artifact = checked_input(artifact, "model file or folder")
    folder = artifact if artifact.is_dir() else artifact.parent
    weights = [artifact] if artifact.is_file() else sorted(artifact.glob("*.safetensors"))
    copies = {f.name: read_metadata(f).get(METADATA_KEY) for f in weights if f.suffix == ".safetensors"}
    sidecar = checked_sibling(folder / SIDECAR_NAME, folder)
    if sidecar.is_file():
        copies[SIDECAR_NAME] = sidecar.read_text(encoding="utf-8")
    records = {where: ProvenanceRecord.from_json(text, where) for where, text in copies.items() if text}
    if not records:
        raise InputError(f"{artifact}: no provenance record (no '{METADATA_KEY}' metadata, no {SIDECAR_NAME}); "
                         "it was not produced by a compsec operation that records provenance")
    first = next(iter(records.values()))
    for where, record in records.items():
        if record != first:
            raise InputError(f"{artifact}: the provenance record in {where} differs from the others; "
                             "someone edited one copy, do not trust this artifact")
    return first


def compare_digests(expected: dict[str, str], actual: dict[str, str], what: str) -> list[str]:
    """One line per tensor missing, extra or different between two name → sha256 maps."""
    lines = [f"{what}: tensor {name} missing" for name in expected if name not in actual]
    lines += [f"{what}: unexpected tensor {name}" for name in actual if name not in expected]
    lines += [f"{what}: tensor {name} differs" for name in expected if name in actual and actual[name] != expected[name]]
    return lines


def verify_provenance(artifact: str | Path, source: str | Path) -> ProvenanceCheck:
    """Run the three checks of the module docstring; raises InputError for unreadable input only."""
    from compsec.integrity.manifest import content_digest, create_manifest
    from compsec.integrity.provenance_derive import DERIVERS

    check = ProvenanceCheck(read_provenance(artifact))
    record = check.record
    check.problems += compare_digests(record.output_tensor_digests, artifact_tensor_digests(artifact),
                                      "artifact changed since provenance was recorded")
    if content_digest(create_manifest(source)) != record.source_manifest_digest:
        check.problems.append(f"source digest mismatch: {source} is not the source this artifact was made from")
        return check
    derive = DERIVERS.get(record.operation)
    if derive is None:
        check.notes.append(f"operation {record.operation!r} cannot be re-derived from the source alone; "
                           "checked the source digest and the output digests only")
        return check
    derived = derive(Path(source), record.parameters)
    check.problems += compare_digests(derived, record.output_tensor_digests,
                                      f"re-derived {record.operation} output")
    check.notes.append(f"re-derived {len(derived)} tensors by re-applying {record.operation}")
    return check
