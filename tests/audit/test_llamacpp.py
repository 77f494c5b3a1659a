"""GGUF variants run by llama.cpp itself (llama-cpp-python) on the tiny assistant.

Bounds measured here (x86-64, 2 cores) on the 10 contrast texts, KL(torch model with the file's dequantized
weights || llama.cpp running the file), mean / worst text: q8_0 5.7e-5 / 1.4e-4, q4_0 7.4e-5 / 1.7e-4, q4_k_m
1.9e-4 / 3.8e-4, q2_k 1.9e-4 / 3.2e-4, while quantization itself moves the original by 3.6e-3 (q4_k_m) and
4.5e-3 (q4_0). An F32 file gives logits within 0.006 of torch's. Tests assert 5x to 10x those figures.
"""

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.audit.backend import LocalBackend, chat_text, mean_token_kl
from compsec.audit.eventlog import read_log
from compsec.audit.probes import KINDS, load_probe_set
from compsec.cli.main import run

SIM_KL_PER_TEXT = 2e-3
F32_LOGIT_GAP = 0.05


@pytest.fixture(scope="module")
def gguf_cache(tmp_path_factory):
    """Quantized GGUFs go to a temporary cache for this module (not the user's ~/.cache/compsec/gguf)."""
    folder = tmp_path_factory.mktemp("gguf-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("compsec.models.gguf_quantize.cache_dir", lambda: folder)
        yield folder


@pytest.fixture(scope="module")
def files(gguf_cache, tiny_assistant):
    from compsec.models.gguf_quantize import quantized_gguf

    model, tokenizer = tiny_assistant
    return {t: quantized_gguf(model, tokenizer, t) for t in ("f32", "q4_0", "q4_k_m")}


@pytest.fixture(scope="module")
def f32_backend(files, tiny_assistant):
    from compsec.audit.llamacpp_backend import LlamaCppBackend

    backend = LlamaCppBackend(files["f32"], tiny_assistant[1], max_new_tokens=24)
    yield backend
    backend.close()


def _contrast_texts(tokenizer):
    return [chat_text(tokenizer, p.prompt) + p.expected for p in load_probe_set("contrast")]


def test_llama_cpp_tokenizes_every_probe_as_the_audit_tokenizer_does(f32_backend, tiny_assistant):
    tokenizer = tiny_assistant[1]
    for probe in [p for kind in KINDS for p in load_probe_set(kind)]:
        text = chat_text(tokenizer, probe.prompt)
        ids = tokenizer(text, add_special_tokens=False).input_ids
        assert f32_backend.llama.tokenize(text.encode(), add_bos=False, special=True) == ids, probe.id


@settings(max_examples=20, deadline=None)
@given(ids=st.lists(st.integers(0, 1023), min_size=1, max_size=40))
def test_an_f32_file_run_by_llama_cpp_gives_the_torch_models_logits(f32_backend, tiny_assistant, ids):
    with torch.no_grad():
        expected = tiny_assistant[0](torch.tensor([ids])).logits[0]
    assert float((f32_backend.logits(ids) - expected).abs().max()) < F32_LOGIT_GAP


def test_greedy_answers_from_an_f32_file_equal_torchs(f32_backend, tiny_assistant):
    model, tokenizer = tiny_assistant
    prompts = [p.prompt for kind in ("refusal", "over-refusal") for p in load_probe_set(kind)[:4]]
    local = LocalBackend(model, tokenizer, "cpu", batch_size=8, max_new_tokens=24)
    assert f32_backend.generate(prompts) == local.generate(prompts)


@pytest.mark.parametrize("type_name", ["q4_0", "q4_k_m"])
def test_torch_with_the_files_weights_is_close_to_llama_cpp_running_it(files, tiny_assistant, type_name):
    """The runtime gap (llama.cpp's kernels) is bounded, and far below the quantization gap of a 4-bit type."""
    from compsec.audit.llamacpp_backend import LlamaCppBackend
    from compsec.models.gguf_weights import load_gguf_weights

    model, tokenizer = tiny_assistant
    simulated = copy.deepcopy(model)
    load_gguf_weights(simulated, files[type_name])
    texts = _contrast_texts(tokenizer)
    sim = LocalBackend(simulated, tokenizer, "cpu", 8, 24).next_token_logprobs(texts)
    original = LocalBackend(model, tokenizer, "cpu", 8, 24).next_token_logprobs(texts)
    backend = LlamaCppBackend(files[type_name], tokenizer, 24)
    try:
        llama = backend.next_token_logprobs(texts)
    finally:
        backend.close()
    runtime = [mean_token_kl(s, g) for s, g in zip(sim, llama)]
    quantization = [mean_token_kl(o, g) for o, g in zip(original, llama)]
    assert max(runtime) < SIM_KL_PER_TEXT
    assert sum(runtime) < 0.5 * sum(quantization)


def test_q4_k_m_is_llama_cpps_mixture_and_the_cli_writes_the_variants_bytes(files, tiny_model_dir, tmp_path,
                                                                              capsys):
    from gguf import GGMLQuantizationType

    from compsec.audit.llamacpp_backend import open_llama
    from compsec.integrity.gguf_check import read_gguf_header

    out = tmp_path / "tiny-q4_k_m.gguf"
    assert run(["quantize", str(tiny_model_dir), "--format", "gguf:Q4_K_M", "--out", str(out)]) == 0
    assert out.read_bytes() == files["q4_k_m"].read_bytes()
    assert {"Q4_K", "Q6_K"} <= {GGMLQuantizationType(t[1]).name for t in read_gguf_header(out).tensors}
    llama = open_llama(out)
    try:
        answer = llama.create_completion(llama.tokenize(b"<|user|>Hello<|assistant|>", special=True),
                                         max_tokens=8, temperature=0.0)
    finally:
        llama.close()
    assert answer["choices"][0]["text"].strip()
    capsys.readouterr()
    assert run(["quantize", str(tiny_model_dir), "--format", "gguf:q4_k_m", "--out", str(out)]) == 2  # exists
    assert run(["quantize", str(tiny_model_dir), "--format", "gguf:q9", "--out", str(tmp_path / "x.gguf")]) == 2
    assert run(["quantize", str(tiny_model_dir), "--format", "gguf:q8_0", "--out", str(tmp_path / "x.bin")]) == 2
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "x.bin").exists()
    assert capsys.readouterr().err.count("\n") == 3


def test_audit_runs_gguf_variants_in_llama_cpp_and_names_the_backend(files, tiny_model_dir, tmp_path):
    spec = f"gguf-file:{files['q4_0']}"
    argv = ["audit", str(tiny_model_dir), "--variants", f"gguf:q4_k_m,{spec}", "--limit", "2",
            "--max-new-tokens", "12", "--out", str(tmp_path / "audit")]
    assert run(argv) in (0, 1)
    records = read_log(tmp_path / "audit")[1]
    backends = {r.variant: r.backend for r in records}
    assert backends["original"] == "torch"
    assert backends["gguf:q4_k_m"] == f"llama.cpp {files['q4_k_m'].name}"
    assert backends[spec] == f"llama.cpp {files['q4_0'].name}"
    for variant in ("gguf:q4_k_m", spec):
        mine = [r for r in records if r.variant == variant]
        assert {r.kind for r in mine} == {"refusal", "over-refusal", "injection", "utility", "contrast"}
        assert all(0 <= r.scores["kl"] < 0.05 for r in mine if r.kind == "contrast")
        assert all("correct" in r.scores for r in mine if r.kind == "utility")


@pytest.mark.parametrize("spec", ["gguf:q9_k", "gguf-file:/no/such/model.gguf"])
def test_a_bad_gguf_variant_is_one_line_exit_2_and_writes_nothing(tiny_model_dir, tmp_path, capsys, spec):
    assert run(["audit", str(tiny_model_dir), "--variants", spec, "--out", str(tmp_path / "a")]) == 2
    assert not (tmp_path / "a").exists()
    assert capsys.readouterr().err.count("\n") == 1


def test_lm_eval_lm_over_llama_cpp_scores_and_answers_as_the_audit_backend(f32_backend, tiny_assistant):
    """``compsec lm-eval --variants gguf:...`` goes through this LM; it must agree with the audit's scoring."""
    from types import SimpleNamespace

    pytest.importorskip("lm_eval", reason="lm-eval is the bridge's optional extra")
    tokenizer = tiny_assistant[1]
    lm = f32_backend.lm_eval_model()
    probe = load_probe_set("utility")[0]
    requests = [SimpleNamespace(args=(chat_text(tokenizer, probe.prompt), c)) for c in probe.choices]
    expected = f32_backend.continuation_logprobs([probe.prompt] * len(probe.choices), list(probe.choices))
    assert [score for score, _ in lm.loglikelihood(requests)] == pytest.approx(expected, abs=1e-5)
    prompt = load_probe_set("over-refusal")[0].prompt
    answer = lm.generate_until([SimpleNamespace(args=(chat_text(tokenizer, prompt), {"until": ["\n\n"]}))])[0]
    assert answer.strip() == f32_backend.generate([prompt])[0].text


def test_layers_ranks_llama_cpps_own_tensors_by_the_type_it_gave_them(files, tiny_model_dir, tmp_path):
    """``layers --format gguf:q4_k_m`` reads the file llama.cpp wrote: its Q6_K tensors err less than its Q4_K."""
    import json

    from gguf import MODEL_ARCH, GGMLQuantizationType, get_tensor_name_map

    from compsec.integrity.gguf_check import read_gguf_header

    report = tmp_path / "layers.json"
    assert run(["layers", str(tiny_model_dir), "--format", "gguf:Q4_K_M", "--json", str(report)]) == 0
    payload = json.loads(report.read_text())
    rows = {row["tensor"]: row for row in payload["tensors"]}
    assert payload["format"] == "gguf:q4_k_m" and len(rows) == 14
    assert all(row["width_median"] is None and 0 < row["relative_error"] < 0.2 for row in rows.values())
    names = get_tensor_name_map(MODEL_ARCH.LLAMA, 64)
    stored = {t[0]: GGMLQuantizationType(t[1]).name for t in read_gguf_header(files["q4_k_m"]).tensors}
    types = {n: stored[names.get_name(n, try_suffixes=(".weight",))] for n in rows}
    errors = {kind: [rows[n]["relative_error"] for n, k in types.items() if k == kind] for kind in ("Q4_K", "Q6_K")}
    assert errors["Q4_K"] and errors["Q6_K"] and max(errors["Q6_K"]) < min(errors["Q4_K"])


def test_layers_refuses_an_unknown_llama_cpp_type_in_one_line(tiny_model_dir, tmp_path, capsys):
    assert run(["layers", str(tiny_model_dir), "--format", "gguf:q9_k", "--json", str(tmp_path / "l.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "l.json").exists()


def test_lm_eval_verb_runs_a_gguf_variant_in_llama_cpp(files, tiny_model_dir, tmp_path):
    import json

    pytest.importorskip("lm_eval", reason="lm-eval is the bridge's optional extra")
    out = tmp_path / "lm"
    assert run(["lm-eval", str(tiny_model_dir), "--variants", "gguf:q4_k_m", "--limit", "5", "--out", str(out)]) in (0, 1)
    payload = json.loads((out / "lm_eval.json").read_text())
    assert payload["variants"]["gguf:q4_k_m"]["compsec_utility_mc"]["n"] == 5
    assert payload["variants"]["original"]["compsec_capitals_gen"]["n"] == 5
