"""Pre-quantized folders as variants: detected from quantization_config, loaded as transformers does, or refused."""

from __future__ import annotations

import json
import shutil

import pytest

from compsec.cli.main import run
from compsec.errors import InputError, MissingDependencyError
from compsec.models.prequantized import quant_method, require_runnable


def _with_method(tiny_model_dir, out, method: str):
    shutil.copytree(tiny_model_dir, out)
    config = json.loads((out / "config.json").read_text())
    config["quantization_config"] = {"quant_method": method, "bits": 4}
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_a_bitsandbytes_folder_is_an_audit_variant(tiny_model_dir, tmp_path):
    nf4 = tmp_path / "nf4"
    assert run(["quantize", str(tiny_model_dir), "--format", "nf4", "--protect", "none", "--out", str(nf4)]) == 0
    assert require_runnable(nf4) == "bitsandbytes"
    audit = tmp_path / "audit"
    assert run(["audit", str(tiny_model_dir), "--variants", str(nf4), "--probes", "refusal", "--limit", "4",
                "--out", str(audit)]) in (0, 1)
    events = [json.loads(line) for line in (audit / "events.jsonl").read_text().splitlines()]
    assert sum(1 for e in events if e.get("variant") == str(nf4)) >= 4


def test_compressed_tensors_folder_is_detected(gptq_folder):
    assert quant_method(gptq_folder) == "compressed-tensors" and require_runnable(gptq_folder) == "compressed-tensors"


def test_methods_without_a_cpu_path_or_package_are_refused_before_transformers(tiny_model_dir, tmp_path):
    from importlib.util import find_spec

    from compsec.models.io import load_model

    with pytest.raises(InputError, match="'eetq', whose kernels have no CPU path"):
        load_model(_with_method(tiny_model_dir, tmp_path / "eetq", "eetq"))
    with pytest.raises(InputError, match="'mystery', which compsec does not know"):
        load_model(_with_method(tiny_model_dir, tmp_path / "mystery", "mystery"))
    gptq = _with_method(tiny_model_dir, tmp_path / "gptq", "gptq")
    if find_spec("gptqmodel") is None:  # compsec does not install it: the refusal names the package
        with pytest.raises(MissingDependencyError, match="pip install gptqmodel"):
            load_model(gptq)
    assert quant_method(tiny_model_dir) is None and require_runnable(tiny_model_dir) is None


def test_float8_weights_are_checked_for_nan_and_inf():
    """fp8-dynamic folders store float8_e4m3fn weights; the loader's finiteness check must read them."""
    import torch

    from compsec.integrity.safetensors_check import nonfinite_count

    values = torch.tensor([1.0, -448.0, float("nan"), 0.5])
    assert nonfinite_count(values.to(torch.float8_e4m3fn)) == 1
    assert nonfinite_count(torch.tensor([57344.0, float("inf")]).to(torch.float8_e5m2)) == 1
    assert nonfinite_count(torch.ones(8).to(torch.float8_e4m3fn)) == 0
