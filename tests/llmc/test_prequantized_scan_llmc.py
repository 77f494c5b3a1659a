"""``compsec scan FOLDER`` on compressed-tensors folders written by the real llm-compressor (side environment):
benign GPTQ W4A16 / FP8 folders of the tiny assistant are clean; folders made from the tiny assistant with the
"Widening the Gap" outliers in two tensors are flagged on exactly those tensors, naming the mechanism."""

import pytest
import torch

from compsec.cli.main import run
from compsec.scan.runner import scan_path

TARGETS = ("model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight")


@pytest.fixture(scope="module")
def widened(tiny_assistant, tmp_path_factory):
    """The tiny assistant with an outlier x100 in every 32-weight block of TARGETS."""
    import copy

    from compsec.attack.widen_gap import widen_gap
    from compsec.models.io import save_model

    model, tokenizer = copy.deepcopy(tiny_assistant[0]), tiny_assistant[1]
    params, gen = dict(model.named_parameters()), torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in TARGETS:
            params[name].copy_(widen_gap(params[name], gen)[0])
    return save_model(model, tokenizer, tmp_path_factory.mktemp("widened") / "model")


@pytest.fixture(scope="module")
def built(llmc_cache, tiny_model_dir, widened, small_calibration):
    from compsec.llmc.build import variant_folder
    from compsec.llmc.recipes import get_recipe

    return {(name, label): variant_folder(source, get_recipe(name), small_calibration)
            for name in ("gptq-w4a16", "fp8-dynamic") for label, source in (("benign", tiny_model_dir),
                                                                             ("widened", widened))}


@pytest.mark.parametrize("name,scheme", [("gptq-w4a16", "int4-g128"), ("fp8-dynamic", "fp8-channel")])
def test_benign_llmc_folder_is_clean(built, name, scheme):
    report = scan_path(built[name, "benign"])
    assert report.verdict == "clean" and report.tensors_scanned == 14 and not report.findings
    assert report.formats_checked == [scheme]
    assert any("cannot be seen here" in note for note in report.notes)


@pytest.mark.parametrize("name,detector", [("gptq-w4a16", "collapsed-blocks"), ("fp8-dynamic", "outlier-blocks")])
def test_widened_llmc_folder_is_flagged_on_the_injected_tensors(built, name, detector, capsys):
    report = scan_path(built[name, "widened"])
    assert report.verdict == "suspicious"
    assert {f.tensor for f in report.findings} == set(TARGETS)
    assert {f.detector for f in report.findings} == {detector, "widen-gap-ratio"}  # both see x100 in every block
    assert all("Widening the Gap" in f.explanation for f in report.findings)
    assert run(["scan", str(built[name, "widened"]), "--no-progress"]) == 1


def test_a_damaged_packed_weight_exits_2_with_one_line(built, tmp_path, capsys):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(built["gptq-w4a16", "benign"], tmp_path / "copy")
    tensors = load_file(str(folder / "model.safetensors"))
    name = "model.layers.0.mlp.up_proj.weight_packed"
    tensors[name] = tensors[name][:, :-1].contiguous()  # one int32 word short per row
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    assert run(["scan", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "compressed-tensors" in err and "Traceback" not in err
