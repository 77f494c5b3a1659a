"""End to end through ``compsec scan``: exit codes, JSON fields, SARIF structure, tampered vs clean folders."""

import json

import pytest
import torch
from safetensors.torch import save_file

from compsec import formats
from compsec.cli.main import run
from compsec.scan import ScanConfig, scan_path, synthetic
from compsec.scan.sarif import RULES

LAYERS = 2
NAMES = [f"model.layers.{i}.{part}.weight" for i in range(LAYERS) for part in ("self_attn.q_proj", "mlp.up_proj")]


def write_model(folder, gen, dtype=torch.bfloat16, change=None):
    """A llama-shaped folder (config.json + one shard) of benign weights; ``change(name, w)`` may tamper."""
    tensors = {name: synthetic.benign((64, 512), "gaussian", dtype, gen) for name in NAMES}
    tensors["model.embed_tokens.weight"] = synthetic.benign((64, 512), "gaussian", dtype, gen)
    tensors["model.norm.weight"] = torch.ones(512, dtype=dtype)
    if change:
        tensors = {name: change(name, w) for name, w in tensors.items()}
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": LAYERS}))
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def scan_cli(folder, tmp_path, *extra):
    out_json, out_sarif = tmp_path / "r.json", tmp_path / "r.sarif"
    code = run(["scan", str(folder), "--formats", "nf4,int8", "--no-progress", "--json", str(out_json),
                "--sarif", str(out_sarif), *extra])
    return code, json.loads(out_json.read_text()), json.loads(out_sarif.read_text())


def test_clean_folder_exits_zero_with_a_complete_report(tmp_path):
    code, report, _ = scan_cli(write_model(tmp_path / "m", torch.Generator().manual_seed(0)), tmp_path)
    assert code == 0 and report["verdict"] == "clean" and report["findings"] == []
    assert report["formats_checked"] == ["nf4", "int8"]
    assert report["params_scanned"] == len(NAMES) * 64 * 512  # embeddings and norms are not quantizable
    assert report["seconds"] > 0 and report["score"] < 3


def test_repaired_tensor_exits_one_and_is_named(tmp_path):
    gen = torch.Generator().manual_seed(1)
    target = NAMES[1]
    nf4 = formats.get("nf4")
    folder = write_model(tmp_path / "m", gen,
                         change=lambda n, w: synthetic.pgd_repaired(w, nf4, 0.2, gen) if n == target else w)
    code, report, sarif = scan_cli(folder, tmp_path)
    assert code == 1 and report["verdict"] == "suspicious"
    hits = {(f["tensor"], f["format"], f["detector"]) for f in report["findings"]}
    assert (target, "nf4", "edge-mass") in hits
    assert {t for t, _, _ in hits} == {target}
    result = sarif["runs"][0]["results"][0]
    assert result["level"] == "error" and result["ruleId"] == "edge-mass"
    assert result["locations"][0]["logicalLocations"][0]["name"] == target


def test_sarif_log_has_the_2_1_0_structure(tmp_path):
    gen = torch.Generator().manual_seed(2)
    folder = write_model(tmp_path / "m", gen, change=lambda n, w: synthetic.outlier_injected(w, 64, 0.1, gen)
                         if n == NAMES[0] else w)
    code, report, sarif = scan_cli(folder, tmp_path)
    assert code == 1
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run_,) = sarif["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "compsec" and [r["id"] for r in driver["rules"]] == list(RULES)
    assert all({"id", "shortDescription", "fullDescription"} <= set(rule) for rule in driver["rules"])
    assert len(run_["results"]) == len(report["findings"])
    for result in run_["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("none", "note", "warning", "error") and result["message"]["text"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]


def test_grid_derived_checkpoint_is_information_and_exits_zero(tmp_path):
    q4 = formats.get("q4_1" if "q4_1" in formats.names() else "nf4")
    folder = write_model(tmp_path / "m", torch.Generator().manual_seed(3),
                         change=lambda n, w: synthetic.grid_derived(w, q4) if w.ndim == 2 else w)
    report = scan_path(folder, ScanConfig(formats=("nf4", "int8")))
    assert report.verdict == "clean"
    assert {f.detector for f in report.findings} == {"grid-provenance"}
    assert all(f.severity == "info" for f in report.findings)


def test_errors_exit_two(tmp_path):
    assert run(["scan", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert run(["scan", str(write_model(tmp_path / "m", torch.Generator())), "--formats", "nope"]) == 2
    assert run(["scan", str(tmp_path / "m"), "--no-progress", "--behaviour"]) == 2
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\xff" * 64)  # a hostile / malformed header
    assert run(["scan", str(tmp_path / "m"), "--no-progress"]) == 2


@pytest.mark.behaviour
def test_tiny_assistant_scans_clean(tiny_model_dir, tmp_path):
    code = run(["scan", str(tiny_model_dir), "--no-progress", "--json", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["tensors_scanned"] > 0 and len(report["formats_checked"]) >= 3
    assert code == 0, report["findings"]


def test_every_weight_is_examined_by_default(tmp_path):
    report = scan_path(write_model(tmp_path / "m", torch.Generator()), ScanConfig(formats=("nf4",)))
    assert report.params_scanned == len(NAMES) * 64 * 512
    assert report.weights_examined == report.params_scanned and report.sample_seed is None
    assert {s["tensor"] for s in report.skipped} == {"model.embed_tokens.weight", "model.norm.weight"}


def test_a_sample_is_blocks_from_every_row_with_a_recorded_seed(tmp_path):
    folder = write_model(tmp_path / "m", torch.Generator())
    report = scan_path(folder, ScanConfig(formats=("nf4", "int8"), sample_weights=64 * 64 * 2))
    assert report.params_scanned == len(NAMES) * 64 * 512
    assert report.weights_examined == len(NAMES) * 64 * 2 * 64  # 2 blocks of 64 in each of the 64 rows
    assert report.sample_seed is not None and report.settings["seed"] == report.sample_seed
    assert report.miss_probability["rows"] == {"0.01": 0.0, "0.1": 0.0, "0.5": 0.0}  # every row is sampled
    again = scan_path(folder, ScanConfig(formats=("nf4", "int8"), sample_weights=64 * 64 * 2,
                                         seed=report.sample_seed))
    assert again.sample_seed == report.sample_seed and again.score == report.score


def test_a_weight_that_overflows_int8s_float16_cast_is_a_refused_format_not_an_error(tmp_path):
    """LLM.int8 casts to float16 first: a weight >= 65520 cannot be quantized that way.  The scan says so for that
    tensor and format (an info finding) and still checks every other format, instead of failing the whole run."""
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0)) * 0.02
    w[3, 5] = 70000.0
    save_file({"model.layers.0.mlp.up_proj.weight": w}, str(tmp_path / "m.safetensors"))
    code = run(["scan", str(tmp_path / "m.safetensors"), "--no-progress", "--json", str(tmp_path / "r.json"),
                "--sarif", str(tmp_path / "r.sarif")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code in (0, 1) and report["verdict"] in ("clean", "suspicious")
    refused = [f for f in report["findings"] if f["detector"] == "format-refused"]
    assert [(f["format"], f["severity"]) for f in refused] == [("int8", "info")]
    assert "65520" in refused[0]["explanation"]
    assert report["weights_examined"] == w.numel()
    sarif = json.loads((tmp_path / "r.sarif").read_text())
    assert "format-refused" in {r["ruleId"] for r in sarif["runs"][0]["results"]}
