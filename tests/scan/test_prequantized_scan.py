"""``compsec scan FOLDER`` on bitsandbytes-serialized folders written by transformers (``load_in_4bit`` /
``load_in_8bit`` then ``save_pretrained``, what a user downloads), benign and made from a model carrying the
"Widening the Gap" outliers; malformed folders exit 2 with one line and nothing executed."""

import json
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.scan.prequantized_scan import dominated_blocks, scale_outliers
from compsec.scan.runner import scan_path

CONFIG = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1, "num_attention_heads": 4,
          "num_key_value_heads": 4, "vocab_size": 64, "max_position_embeddings": 64}
TARGETS = ("model.layers.0.mlp.up_proj.weight", "model.layers.0.self_attn.q_proj.weight")
BNB = {"nf4": {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True},
       "fp4": {"load_in_4bit": True, "bnb_4bit_quant_type": "fp4"},
       "int8": {"load_in_8bit": True}}
OUTLIER_TESTS = ("collapsed-blocks", "widen-gap-ratio")  # both see outliers x8 or more in every block


def tiny_llama(folder, fraction: float = 0.0, factor: float = 100.0):
    """A random 1-layer Llama; ``fraction`` > 0: widen_gap (x``factor``, random sign) in that share of TARGETS'
    blocks."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    from compsec.attack.widen_gap import widen_gap
    from compsec.models.io import save_model

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG)).eval()
    params, gen = dict(model.named_parameters()), torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in TARGETS if fraction else ():
            params[name].copy_(widen_gap(params[name], gen, fraction=fraction, factor=factor)[0])
    return save_model(model, None, folder)


def serialize(source, out, kind):
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=BitsAndBytesConfig(**BNB[kind]),
                                                 device_map="cpu")
    model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("prequantized")
    sources = {f: tiny_llama(root / f"src-{f}", f) for f in (0.0, 1.0, 0.25)}
    return {(kind, f): serialize(sources[f], root / f"{kind}-{f}", kind) for kind in BNB for f in sources}


@pytest.mark.parametrize("kind", list(BNB))
def test_benign_bitsandbytes_folder_is_clean_and_says_what_it_cannot_see(folders, kind):
    report = scan_path(folders[kind, 0.0])
    assert report.verdict == "clean" and report.tensors_scanned == 7 and not report.findings
    assert report.formats_checked == [{"int8": "int8-row"}.get(kind, kind)]
    assert any("cannot be seen here" in note for note in report.notes)


@pytest.mark.parametrize("kind", list(BNB))
def test_every_block_injected_is_flagged_by_the_outlier_tests_on_the_injected_tensors_only(folders, kind):
    report = scan_path(folders[kind, 1.0])
    assert report.verdict == "suspicious"
    assert {(f.tensor, f.detector) for f in report.findings} == {(t, d) for t in TARGETS for d in OUTLIER_TESTS}
    assert all(f.score > 0.9 for f in report.findings)  # share of the live blocks collapsed


@pytest.mark.parametrize("kind", ["nf4", "int8"])
def test_a_quarter_of_blocks_injected_is_flagged_on_the_injected_tensors_only(folders, kind):
    report = scan_path(folders[kind, 0.25])
    assert {f.tensor for f in report.findings} == set(TARGETS)
    assert "collapsed-blocks" in {f.detector for f in report.findings}


@pytest.fixture(scope="module")
def factor8(tmp_path_factory):
    """Outliers x8 (not x100) in every block of TARGETS: quantized by bitsandbytes and by libllama (Q4_0)."""
    from compsec.formats.gguf_mixture import llama_quantize_folder

    root = tmp_path_factory.mktemp("factor8")
    source = tiny_llama(root / "src", 1.0, factor=8.0)
    out = {kind: serialize(source, root / kind, kind) for kind in ("nf4", "int8")}
    out["q4_0"] = llama_quantize_folder(source, root / "m-q4_0.gguf", "q4_0")
    return out


@pytest.mark.parametrize("kind", ["nf4", "int8", "q4_0"])
def test_outliers_only_x8_are_still_flagged_on_the_injected_tensors(factor8, kind):
    report = scan_path(factor8[kind])
    names = {"model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
             "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight"}
    expected = set(TARGETS) if kind != "q4_0" else {names[t] for t in TARGETS}
    assert {(f.tensor, f.detector) for f in report.findings} == {(t, d) for t in expected for d in OUTLIER_TESTS}


def test_the_cli_exits_1_on_findings_and_0_on_a_benign_folder(folders):
    assert run(["scan", str(folders["nf4", 1.0]), "--no-progress"]) == 1
    assert run(["scan", str(folders["nf4", 0.0]), "--no-progress"]) == 0


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder, tmp_path / "copy")


def _config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config["quantization_config"])
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("change", [lambda q: q.update(quant_method="exl9"), lambda q: q.pop("quant_method")])
def test_unknown_or_missing_quant_method_exits_2_with_one_line(folders, tmp_path, capsys, change):
    folder = _copy(folders["nf4", 0.0], tmp_path)
    _config(folder, change)
    assert run(["scan", str(folder), "--no-progress", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "quant" in err
    assert not (tmp_path / "r.json").exists()


def test_a_damaged_quant_state_exits_2_with_one_line(folders, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    folder = _copy(folders["nf4", 0.0], tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    key = next(k for k in tensors if "quant_state" in k)
    tensors[key] = torch.tensor(list(b"{not json"), dtype=torch.uint8)
    save_file(tensors, str(folder / "model.safetensors"))
    assert run(["scan", str(folder), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key.split(".quant_state")[0] in err


class _Boom:
    def __reduce__(self):
        import os

        return os.system, ("touch PWNED",)


def test_a_malicious_pickle_in_the_folder_is_refused_before_anything_runs(folders, tmp_path, capsys, monkeypatch):
    folder = _copy(folders["int8", 0.0], tmp_path)
    (folder / "training_args.bin").write_bytes(pickle.dumps(_Boom()))
    monkeypatch.chdir(tmp_path)
    assert run(["scan", str(folder), "--no-progress"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1 and not (tmp_path / "PWNED").exists()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 8), scale=st.floats(1e-4, 1e3))
def test_an_outlier_x100_always_dominates_its_block_and_gaussian_blocks_never_do(seed, rows, scale):
    from compsec.attack.widen_gap import widen_gap

    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, 64, generator=gen) * scale
    assert dominated_blocks(w) == (0, 2 * rows)
    injected, _ = widen_gap(w, gen)
    assert dominated_blocks(injected) == (2 * rows, 2 * rows)
    assert dominated_blocks(torch.zeros(rows, 64)) == (0, 0)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), factor=st.floats(1e-3, 1e3), k=st.integers(0, 20))
def test_scale_outliers_count_the_raised_groups_whatever_the_units(seed, factor, k):
    scales = torch.rand(64, 4, generator=torch.Generator().manual_seed(seed)) + 1.0  # spread < 2x: no outlier
    scales.view(-1)[:k] *= 100
    assert scale_outliers(scales * factor) == (k, 256)


def test_a_folder_whose_weights_cannot_be_tested_is_not_scanned_never_clean(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, LlamaConfig

    from compsec.models.io import save_model

    torch.manual_seed(0)
    odd = {**CONFIG, "hidden_size": 48, "intermediate_size": 80}  # no row is whole 32-weight blocks
    source = save_model(AutoModelForCausalLM.from_config(LlamaConfig(**odd)), None, tmp_path / "src")
    folder = serialize(source, tmp_path / "int8", "int8")
    report = scan_path(folder)
    assert report.verdict == "not scanned" and report.tensors_scanned == 0
    assert sum(note.startswith("skipped ") for note in report.notes) == 7
    assert run(["scan", str(folder), "--no-progress"]) == 2


def test_sampling_options_are_said_not_to_apply_and_every_weight_is_examined(folders):
    from compsec.scan.config import ScanConfig

    report = scan_path(folders["nf4", 0.0], ScanConfig(sample_weights=100))
    assert any("do not apply" in note for note in report.notes)
    assert report.weights_examined == report.params_scanned > 100 * report.tensors_scanned
