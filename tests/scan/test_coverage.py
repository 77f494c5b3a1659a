"""Full coverage by default, unpredictable samples, honest verdicts: an attacker who read the old fixed sample is
caught, two sampled runs look at different weights, an empty examination is "not scanned", NaN/Inf is a finding."""

import json
import math
import zlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from compsec import formats
from compsec.cli.main import run
from compsec.scan import ScanConfig, scan_path, synthetic
from compsec.scan.coverage import miss_probabilities, sample_layout, tensor_generator

NAMES = [f"model.layers.{i}.{part}.weight" for i in range(2) for part in ("self_attn.q_proj", "mlp.up_proj")]


def old_default_rows(n_rows: int, row_length: int, name: str) -> list[int]:
    """The rows the scanner used to read by default (4096 weights as whole rows, seed 0 + the tensor's name):
    what an attacker could compute from the source."""
    wanted = min(n_rows, max(2, -(-4096 // row_length)))
    gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return sorted(torch.randperm(n_rows, generator=gen)[:wanted].tolist())


def write_folder(folder, tensors):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_fingerprint_outside_the_old_fixed_sample_is_flagged(tmp_path):
    gen, nf4 = torch.Generator().manual_seed(5), formats.get("nf4")
    tensors = {}
    for name in NAMES:
        w = synthetic.benign((128, 512), "gaussian", torch.float16, gen)
        marked = synthetic.pgd_repaired(w, nf4, 0.3, gen)  # 30 % of weights next to their NF4 interval edge
        keep = old_default_rows(128, 512, name)
        marked[keep] = w[keep]  # the rows the old default sampler read stay benign
        assert torch.equal(marked[keep], w[keep]) and not torch.equal(marked, w)
        tensors[name] = marked
    report = scan_path(write_folder(tmp_path / "m", tensors), ScanConfig(formats=("nf4", "int8")))
    assert report.verdict == "suspicious" and report.weights_examined == report.params_scanned
    assert {f.tensor for f in report.suspicious if f.format == "nf4"} == set(NAMES)


def test_two_sampled_runs_look_at_different_weights(tmp_path):
    gen = torch.Generator().manual_seed(6)
    folder = write_folder(tmp_path / "m", {n: synthetic.benign((64, 512), "gaussian", torch.float16, gen)
                                           for n in NAMES})
    cfg = ScanConfig(formats=("nf4",), sample_weights=1024)
    first, second = scan_path(folder, cfg), scan_path(folder, cfg)
    assert first.sample_seed != second.sample_seed
    layouts = [sample_layout(64, 512, 1024, 64, tensor_generator(r.sample_seed, NAMES[0])) for r in (first, second)]
    assert not torch.equal(layouts[0][0], layouts[1][0]) or not torch.equal(layouts[0][1], layouts[1][1])


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 300), per_row=st.integers(1, 16), budget=st.integers(1, 20_000), seed=st.integers(0, 99))
def test_sample_layout_spreads_blocks_over_rows(rows, per_row, budget, seed):
    block = 32
    chosen, columns = sample_layout(rows, per_row * block, budget, block, tensor_generator(seed, "w"))
    blocks = -(-budget // block)
    assert chosen.tolist() == sorted(set(chosen.tolist())) and 0 <= int(chosen.min()) and int(chosen.max()) < rows
    assert len(chosen) == min(rows, blocks)  # every row once the budget allows it
    assert columns.shape[0] == len(chosen) and int(columns.max()) < per_row and int(columns.min()) >= 0
    assert all(len(set(r)) == len(r) for r in columns.tolist())  # distinct blocks within a row
    assert columns.numel() >= min(blocks, rows * per_row)


def test_miss_probability_is_hypergeometric():
    p = miss_probabilities(100, 10, 10)
    assert p["rows"]["0.5"] == pytest.approx(math.comb(50, 10) / math.comb(100, 10))
    assert p["rows"]["0.01"] == pytest.approx(0.9)  # one marked row among 100, 10 drawn
    assert miss_probabilities(100, 100, 100)["rows"] == {"0.01": 0.0, "0.1": 0.0, "0.5": 0.0}
    assert p["blocks"]["0.1"] == pytest.approx(0.9**10)


def test_an_examination_of_nothing_is_not_scanned_and_exits_two(tmp_path):
    tensors = {NAMES[0]: torch.randn(3, 5), NAMES[1]: torch.randn(512), NAMES[2]: torch.ones(4, 8, dtype=torch.int32),
               "model.norm.weight": torch.ones(512)}
    folder = write_folder(tmp_path / "m", tensors)
    code = run(["scan", str(folder), "--formats", "nf4,int8", "--no-progress", "--json", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 2 and report["verdict"] == "not scanned" and report["findings"] == []
    reasons = {s["tensor"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == set(tensors)
    assert "too few weights" in reasons[NAMES[0]] and "2-D" in reasons[NAMES[1]]
    assert "int32" in reasons[NAMES[2]].lower() or "I32" in reasons[NAMES[2]]
    assert "norm" in reasons["model.norm.weight"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_two_nonfinite_weights_in_a_large_tensor_are_a_finding(tmp_path, bad):
    gen = torch.Generator().manual_seed(7)
    tensors = {n: synthetic.benign((256, 512), "gaussian", torch.float32, gen) for n in NAMES}
    tensors[NAMES[3]][200, 17] = bad
    tensors[NAMES[3]][3, 500] = -bad
    folder = write_folder(tmp_path / "m", tensors)
    code = run(["scan", str(folder), "--formats", "nf4", "--no-progress", "--json", str(tmp_path / "r.json")])
    report = json.loads((tmp_path / "r.json").read_text())
    assert code == 1 and report["verdict"] == "suspicious"
    (finding,) = [f for f in report["findings"] if f["detector"] == "nonfinite"]
    assert finding["tensor"] == NAMES[3] and finding["score"] == 2 and "2 NaN/Inf" in finding["explanation"]
    assert report["tensors_scanned"] == 3  # the other tensors are still scanned


# Benign N(0, 0.02) weights at full coverage, 3 seeds x 3 storage dtypes x 3 formats (the corpus FPR is in
# bench/bench_scan_corpus.py): every weight examined must not turn sampling-tuned effect floors into false alarms.
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_benign_weights_stay_clean_at_full_coverage(tmp_path, dtype):
    for seed in range(3):
        gen = torch.Generator().manual_seed(100 + seed)
        folder = write_folder(tmp_path / f"m{seed}", {n: synthetic.benign((128, 1024), "gaussian", dtype, gen)
                                                      for n in NAMES[:2]})
        report = scan_path(folder, ScanConfig(formats=("int8", "nf4", "q4_0")))
        assert report.verdict == "clean", [(f.tensor, f.format, f.detector, f.score) for f in report.suspicious]
