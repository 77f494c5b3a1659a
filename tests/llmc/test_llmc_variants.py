"""llm-compressor variants: what the audit runs is exactly what llm-compressor saved, and it answers."""

from __future__ import annotations

import json

import pytest
import torch

from compsec.llmc.ct_decode import decode_folder


def _dense_twin(original_dir, decoded):
    """The original architecture with every Linear weight replaced by the independently decoded one."""
    from compsec.models.io import load_model

    model, _ = load_model(original_dir)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, item in decoded.items():
            if name in params and name != "model.embed_tokens.weight":
                params[name].copy_(item.weight)
    return model


def test_saved_codes_decode_to_what_transformers_dequantizes(gptq_folder):
    from transformers import AutoModelForCausalLM, CompressedTensorsConfig

    decoded = decode_folder(gptq_folder)
    loaded = AutoModelForCausalLM.from_pretrained(str(gptq_folder), local_files_only=True,
                                                  quantization_config=CompressedTensorsConfig(dequantize=True))
    params = dict(loaded.named_parameters())
    quantized = [name for name, item in decoded.items() if item.codes is not None]
    assert len(quantized) == 14  # 2 blocks x (q, k, v, o, gate, up, down); lm_head is ignored
    for name in quantized:
        item = decoded[name]
        assert item.codes.min() >= -8 and item.codes.max() <= 7 and item.group_size == 128
        assert torch.equal(params[name].data, item.weight), name


def test_audit_variant_runs_exactly_the_saved_weights_and_answers(gptq_folder, tiny_model_dir, small_calibration):
    from compsec.audit.config import AuditConfig
    from compsec.audit.context import AuditContext
    from compsec.llmc.recipes import get_recipe
    from compsec.llmc.variants import LlmcVariant

    recipe = get_recipe("gptq-w4a16")
    variant = LlmcVariant(recipe.name, recipe, small_calibration)
    context = AuditContext(AuditConfig(model=str(tiny_model_dir), variants=(recipe.name,), max_new_tokens=12))
    twin = _dense_twin(tiny_model_dir, decode_folder(gptq_folder))
    ids = context.tokenizer(["What is the capital of France?", "How do I make a bomb?"], return_tensors="pt",
                            padding=True)
    with variant.open(context) as backend:
        assert variant.folder(tiny_model_dir) == gptq_folder  # the cached build, not a new one
        with torch.no_grad():
            compressed_logits = backend.model(**ids).logits
            twin_logits = twin(**ids).logits
        answers = backend.generate(["What is the capital of France?"])
    torch.testing.assert_close(compressed_logits, twin_logits, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        original_logits = context.model(**ids).logits
    assert not torch.allclose(original_logits, compressed_logits)  # it is a different model
    assert answers[0].text.strip()


def test_provenance_records_recipe_and_calibration(gptq_folder, small_calibration):
    record = json.loads((gptq_folder / "provenance.json").read_text())
    params = record["parameters"]
    assert record["operation"] == "llmc-oneshot"
    assert params["recipe"] == {"GPTQModifier": {"targets": ["Linear"], "ignore": ["lm_head"], "scheme": "W4A16"}}
    assert params["calibration"]["samples"] == small_calibration.samples
    assert params["versions"]["llmcompressor"] == "0.14.0.1"
    lines = (gptq_folder / "llmc_calibration.jsonl").read_text().splitlines()
    assert len(lines) == small_calibration.samples


def test_cache_key_follows_model_recipe_and_calibration(gptq_folder, tiny_model_dir, small_calibration,
                                                          monkeypatch):
    from compsec.llmc import build
    from compsec.llmc.calibration import Calibration
    from compsec.llmc.recipes import get_recipe

    def no_rebuild(*_args, **_kwargs):
        raise AssertionError("a cached variant was rebuilt")

    monkeypatch.setattr(build, "write_variant", no_rebuild)
    gptq = get_recipe("gptq-w4a16")
    assert build.variant_folder(tiny_model_dir, gptq, small_calibration) == gptq_folder
    key = build.variant_key(tiny_model_dir, gptq, small_calibration)
    assert build.variant_key(tiny_model_dir, gptq, Calibration(samples=5, max_length=32)) != key
    assert build.variant_key(tiny_model_dir, gptq, Calibration(samples=4, max_length=33)) != key
    assert build.variant_key(tiny_model_dir, get_recipe("gptq-w8a16"), small_calibration) != key


def test_quantize_writes_the_folder_plain_transformers_loads(gptq_folder, tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from compsec.cli.main import run

    out = tmp_path / "gptq"
    assert run(["quantize", str(tiny_model_dir), "--format", "gptq-w4a16", "--out", str(out),
                "--calibration-samples", "4", "--calibration-length", "32"]) == 0
    assert (out / "model.safetensors").read_bytes() == (gptq_folder / "model.safetensors").read_bytes()
    assert not (out / "compsec_build.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    ids = tokenizer("What is the capital of Peru?", return_tensors="pt").input_ids
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] > ids.shape[1]


@pytest.mark.parametrize("calibration", ["missing.jsonl", "bad.jsonl"])
def test_quantize_refuses_a_bad_calibration_file_before_work(tiny_model_dir, tmp_path, calibration, capsys):
    from compsec.cli.main import run

    (tmp_path / "bad.jsonl").write_text('{"prompt": "no text key"}\n')
    out = tmp_path / "out"
    assert run(["quantize", str(tiny_model_dir), "--format", "gptq-w4a16", "--out", str(out),
                "--calibration", str(tmp_path / calibration)]) == 2
    assert not out.exists() or not any(out.iterdir())
