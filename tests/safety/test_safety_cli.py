"""``compsec tiny --fixture smollm2-safety --out DIR``: the safety-tuned SmolLM2 as an ordinary Llama folder."""

import json

import pytest
from transformers import AutoModelForCausalLM

from compsec.cli.main import run


def test_unknown_fixture_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    assert run(["tiny", "--fixture", "gpt-5", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tiny-assistant" in err[0] and "smollm2-safety" in err[0]
    assert not (tmp_path / "m").exists()


@pytest.mark.real_model
@pytest.mark.slow
def test_safety_fixture_is_written_as_a_plain_llama_folder(tmp_path, capsys):
    assert run(["tiny", "--fixture", "smollm2-safety", "--out", str(tmp_path / "safe")]) == 0
    assert "smollm2-safety" in capsys.readouterr().out
    config = json.loads((tmp_path / "safe" / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "safe")
    assert model.config.num_hidden_layers == 30
