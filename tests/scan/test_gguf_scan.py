"""``compsec scan FILE.gguf`` on GGUFs written by llama.cpp (``llama_model_quantize`` in libllama)."""

import pytest
import torch

from compsec.cli.main import run
from compsec.formats.gguf_mixture import llama_quantize_folder
from compsec.scan.gguf_scan import DETECTOR
from compsec.scan.runner import scan_path

CONFIG = {"hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1, "num_attention_heads": 4,
          "num_key_value_heads": 4, "vocab_size": 64, "max_position_embeddings": 128}
TARGET = "model.layers.0.mlp.up_proj.weight"


def tiny_llama(folder, outliers: bool = False):
    """A random 1-layer Llama saved as HF; ``outliers``: in TARGET the largest weight of every 32-weight block of
    every row scaled x100 (random sign), the published all-in-one layout."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from compsec.models.io import save_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG)).eval()
    if outliers:
        w = dict(model.named_parameters())[TARGET]
        with torch.no_grad():
            blocks = w.view(-1, 32)
            top = blocks.abs().argmax(-1, keepdim=True)
            sign = torch.where(torch.rand(top.shape) < 0.5, -1.0, 1.0)
            blocks.scatter_(-1, top, blocks.abs().gather(-1, top) * 100 * sign)
    return save_model(model, None, folder)


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    out = {}
    for label, outliers in (("benign", False), ("outliers", True)):
        folder = tiny_llama(root / label, outliers)
        for ftype in ("q4_k_m", "q6_k"):
            out[label, ftype] = llama_quantize_folder(folder, root / f"{label}-{ftype}.gguf", ftype)
    return out


@pytest.mark.parametrize("ftype", ["q4_k_m", "q6_k"])
def test_benign_llama_quantized_gguf_is_clean(ggufs, ftype):
    report = scan_path(ggufs["benign", ftype])
    assert report.verdict == "clean" and report.tensors_scanned == 8 and not report.findings
    assert any("cannot be seen here" in note for note in report.notes)


@pytest.mark.parametrize("ftype", ["q4_k_m", "q6_k"])
def test_outlier_injected_gguf_is_flagged_by_the_outlier_tests_on_that_tensor_only(ggufs, ftype):
    report = scan_path(ggufs["outliers", ftype])
    assert report.verdict == "suspicious"
    assert {(f.tensor, f.detector) for f in report.findings} == {("blk.0.ffn_up.weight", d)
                                                                 for d in (DETECTOR, "widen-gap-ratio")}


def test_the_cli_scans_a_gguf_and_exits_1_on_findings(ggufs, capsys):
    assert run(["scan", str(ggufs["outliers", "q4_k_m"]), "--no-progress"]) == 1
    assert run(["scan", str(ggufs["benign", "q4_k_m"]), "--no-progress"]) == 0


def test_a_truncated_gguf_exits_2_with_one_line(ggufs, tmp_path, capsys):
    data = ggufs["benign", "q4_k_m"].read_bytes()
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(data[: len(data) // 2])
    assert run(["scan", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
