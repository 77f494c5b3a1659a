"""quantize_model's simulation against transformers' real bitsandbytes modules, and the layers report."""

import json

import bitsandbytes.functional as bnb_functional
import pytest
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from compsec import formats
from compsec.cli.main import run
from compsec.formats.apply import layer_report, quantizable_names, quantize_model


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_simulated_4bit_matches_real_linear4bit(tiny_model_dir, quant_type):
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    real = AutoModelForCausalLM.from_pretrained(tiny_model_dir, quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_compute_dtype=torch.float32), device_map="cpu")
    assert any(type(m).__name__ == "Linear4bit" for m in real.modules())
    simulated = quantize_model(original, formats.get(quant_type))
    # The weights the real modules compute with are exactly the simulated ones ...
    sim_params = dict(simulated.named_parameters())
    for name, module in real.named_modules():
        if type(module).__name__ == "Linear4bit":
            dequantized = bnb_functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            assert torch.equal(dequantized.float(), sim_params[name + ".weight"]), name
    # ... and the logits differ only by the CPU kernel's matmul arithmetic, far less than quantization itself.
    ids = torch.randint(3, original.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    got, want, base = _logits(simulated, ids), _logits(real, ids), _logits(original, ids)
    assert (got - want).abs().max() < 1e-2 * want.abs().max()
    assert (base - want).abs().max() > 10 * (got - want).abs().max()


def _deployed_modules(model_dir, config: BitsAndBytesConfig, kind: str) -> dict:
    real = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=config, device_map="cpu")
    modules = {name: m for name, m in real.named_modules() if type(m).__name__ == kind}
    assert modules, f"transformers built no {kind}"
    return modules


def test_load_in_8bit_stores_the_int8_codes_of_the_fp32_checkpoint(tiny_model_dir):
    """transformers' ``load_in_8bit`` on the fp32 checkpoint (dtype "auto": fp32) hands each weight to
    ``Int8Params``, which casts it to float16: ``CB``/``SCB`` are the int8 format's codes and scales of the
    checkpoint's fp32 weights (quantizing fp32 directly, as compsec did before, gives other codes and scales)."""
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    params, fmt = dict(original.named_parameters()), formats.get("int8")
    assert all(p.dtype == torch.float32 for p in params.values())
    for name, module in _deployed_modules(tiny_model_dir, BitsAndBytesConfig(load_in_8bit=True), "Linear8bitLt").items():
        q = fmt.quantize(params[name + ".weight"].detach())
        assert torch.equal(module.weight.CB, q.codes) and torch.equal(module.weight.SCB, q.scales["absmax"]), name


def test_load_in_4bit_stores_the_nf4_codes_of_the_fp32_checkpoint(tiny_model_dir):
    """``Params4bit`` quantizes the weight in its loaded dtype (fp32 here): no float16 cast on the 4-bit path."""
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    params = dict(original.named_parameters())
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    for name, module in _deployed_modules(tiny_model_dir, config, "Linear4bit").items():
        q = formats.get("nf4").quantize(params[name + ".weight"].detach())
        packed = module.weight.data.reshape(-1)
        codes = torch.stack([packed >> 4, packed & 0xF], dim=1).reshape(-1)
        assert torch.equal(codes, q.codes.reshape(-1)), name
        assert torch.equal(module.weight.quant_state.absmax, q.scales["absmax"]), name


def test_simulated_int8_is_close_to_real_linear8bitlt(tiny_model_dir):
    """LLM.int8() also quantizes activations (vector-wise) and routes outlier columns through fp16, so the
    simulation (weights only) agrees less tightly than for 4-bit; it is still far closer than the original."""
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    real = AutoModelForCausalLM.from_pretrained(
        tiny_model_dir, quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map="cpu")
    assert any(type(m).__name__ == "Linear8bitLt" for m in real.modules())
    simulated = quantize_model(original, formats.get("int8"))
    ids = torch.randint(3, original.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(1))
    got, want = _logits(simulated, ids), _logits(real, ids)
    assert (got - want).abs().max() < 0.05 * want.abs().max()
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() > 0.95


def test_quantize_model_leaves_the_original_and_unquantized_parameters_alone(tiny_assistant):
    model, _ = tiny_assistant
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fmt = formats.get("q4_0")
    simulated = quantize_model(model, fmt)
    names = set(quantizable_names(model, fmt))
    assert names
    for name, param in simulated.named_parameters():
        assert torch.equal(dict(model.named_parameters())[name], before[name])
        if name in names:
            assert fmt.quantize(param.detach()).same_as(fmt.quantize(before[name]))
            assert not torch.equal(param, before[name])
        else:
            assert torch.equal(param, before[name])


def test_layers_report_and_cli(tiny_model_dir, tmp_path, capsys):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    rows = layer_report(model, formats.get("int2-rtn"))
    errors = [r.relative_error for r in rows]
    assert errors == sorted(errors, reverse=True) and 0.05 < errors[0] < 1
    assert all(r.width_median > 0 and 0 <= r.pinned < 0.5 for r in rows)
    out = tmp_path / "layers.json"
    assert run(["layers", str(tiny_model_dir), "--format", "nf4", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "nf4" and len(data["tensors"]) == len(rows)
    # nf4 (4 bits) loses less than int2 on every tensor.
    int2 = {r.tensor: r.relative_error for r in rows}
    assert all(t["relative_error"] < int2[t["tensor"]] for t in data["tensors"])
