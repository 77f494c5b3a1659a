"""provenance verify on llm-compressor folders: faithful, tampered source (scale check and exact re-run)."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from compsec.cli.main import run

TAMPERED = "model.layers.1.mlp.down_proj.weight"  # the last module GPTQ quantizes: nothing downstream moves


def _source_copy(tiny_model_dir, out, change) -> None:
    """A copy of the tiny assistant with ``change(tensor)`` applied to TAMPERED."""
    shutil.copytree(tiny_model_dir, out)
    tensors = load_file(out / "model.safetensors")
    tensors[TAMPERED] = change(tensors[TAMPERED].clone())
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})


def _step(folder) -> float:
    from compsec.llmc.ct_decode import decode_folder

    return float(decode_folder(folder)[TAMPERED].scale[0, 0])


def _without_record(folder, out):
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("provenance.json", "llmc_calibration.jsonl"))
    tensors = load_file(out / "model.safetensors")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})  # drop the embedded record
    return out


def test_rerun_with_recorded_recipe_and_calibration_is_faithful(gptq_folder, tiny_model_dir, capsys):
    assert run(["provenance", "verify", str(gptq_folder), "--source", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "faithful" in out and "14 tensors scale-checked" in out


def test_source_outside_a_group_range_is_caught_by_scales_alone(gptq_folder, tiny_model_dir, tmp_path, capsys):
    folder = _without_record(gptq_folder, tmp_path / "gptq")
    step = _step(gptq_folder)

    def raise_group_max(weight):
        weight[0, 0] = weight[0, :128].abs().max() + 2 * step  # > one step beyond the group's range
        return weight

    _source_copy(tiny_model_dir, tmp_path / "src", raise_group_max)
    assert run(["provenance", "verify", str(folder), "--source", str(tmp_path / "src")]) == 1
    out = capsys.readouterr().out
    assert f"{TAMPERED}: 1 of" in out and "not derived" in out
    assert "not re-run" in out


def test_untouched_source_without_calibration_cannot_tell(gptq_folder, tiny_model_dir, tmp_path, capsys):
    folder = _without_record(gptq_folder, tmp_path / "gptq")
    assert run(["provenance", "verify", str(folder), "--source", str(tiny_model_dir)]) == 1
    out = capsys.readouterr().out
    assert "cannot tell (calibration-dependent)" in out and "largest deviation" in out


@pytest.mark.slow
def test_change_inside_the_group_range_is_caught_by_the_rerun(gptq_folder, tiny_model_dir, tmp_path, capsys):
    step = _step(gptq_folder)

    def move_inside(weight):
        row = weight[0, :128]
        index = int(row.abs().argmin())  # a small weight: +3 steps stays inside the group's range
        weight[0, index] += 3 * step
        assert weight[0, :128].abs().max() == row.abs().max()
        return weight

    _source_copy(tiny_model_dir, tmp_path / "src", move_inside)
    assert run(["provenance", "verify", str(gptq_folder), "--source", str(tmp_path / "src")]) == 1
    out = capsys.readouterr().out
    assert "not derived" in out
    differing = [line for line in out.splitlines() if line.startswith("re-run on the source")]
    assert differing and all(TAMPERED.removesuffix(".weight") in line for line in differing), out


def test_not_a_compressed_tensors_folder_is_an_input_error(tiny_model_dir, tmp_path):
    from compsec.errors import InputError
    from compsec.integrity.ct_provenance import ct_provenance

    with pytest.raises(InputError, match="not a compressed-tensors folder"):
        ct_provenance(tiny_model_dir, tiny_model_dir)


def test_symmetric_scales_match_the_formula_on_a_worked_example():
    from compsec.integrity.ct_provenance import symmetric_scales

    weight = torch.tensor([[0.3, -1.5, 0.75, 0.0], [2.0, 1.0, 0.5, 0.25]])
    assert torch.equal(symmetric_scales(weight, 4, 2), torch.tensor([[1.5 / 7.5, 0.75 / 7.5], [2.0 / 7.5, 0.5 / 7.5]]))
    assert torch.equal(symmetric_scales(weight, 8, None), torch.tensor([1.5 / 127.5, 2.0 / 127.5]).reshape(2, 1))
