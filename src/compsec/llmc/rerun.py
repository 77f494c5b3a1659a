"""Re-run the llm-compressor build a folder records, on a claimed source, for exact provenance checks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from compsec.llmc.build import CALIBRATION_FILE, OPERATION, write_variant
from compsec.llmc.calibration import Calibration, calibration_digest
from compsec.llmc.recipes import LlmcRecipe


def recorded_build(folder: Path) -> tuple[LlmcRecipe, Calibration] | str:
    """The recipe and calibration the folder's provenance record names, or why it cannot be re-run."""
    from compsec.errors import InputError
    from compsec.integrity.provenance_verify import read_provenance

    try:
        record = read_provenance(folder)
    except InputError as err:
        return f"no usable compsec provenance record ({err})"
    params = record.parameters
    if record.operation != OPERATION or not isinstance(params.get("recipe"), dict):
        return f"the provenance record is for {record.operation!r}, not an llm-compressor build"
    recipe = LlmcRecipe(str(params.get("variant", "recorded")), params["recipe"], params.get("calibration") is not None)
    if not recipe.calibrated:
        return recipe, Calibration()
    cal = params["calibration"]
    texts = folder / CALIBRATION_FILE
    if not texts.is_file():
        return f"the calibration texts ({CALIBRATION_FILE}) are not in the folder"
    if calibration_digest(texts.read_text(encoding="utf-8"), int(cal["max_length"])) != cal["sha256"]:
        return f"{CALIBRATION_FILE} does not match the digest in the provenance record"
    return recipe, Calibration(str(texts), int(cal["samples"]), int(cal["max_length"]))


def rerun_digests(folder: Path, source: Path) -> dict[str, str] | str:
    """Tensor name -> sha256 of the recorded build re-run on ``source``, or why it could not be re-run."""
    from compsec.integrity.provenance import artifact_tensor_digests

    build = recorded_build(Path(folder))
    if isinstance(build, str):
        return build
    recipe, calibration = build
    with tempfile.TemporaryDirectory(prefix="compsec-rerun-") as tmp:
        write_variant(source, recipe, calibration, Path(tmp))
        return artifact_tensor_digests(tmp)
