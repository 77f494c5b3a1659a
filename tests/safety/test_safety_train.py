"""The safety-tuning loop: labels cover only the reply, a reduced recipe lowers the refusal loss, the folder loads.

The loop runs on the tiny assistant (seconds) and, marked ``real_model``, on SmolLM2-135M-Instruct itself with a
reduced recipe (two layers, a few steps). No assertion is on trained weights: only on losses measured before and
after the same run, and on the saved folder loading and generating.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from compsec.safety.data import Example
from compsec.safety.train import SafetyRecipe, encode, safety_tune, trainable_parameters
from compsec.tiny.chat import generate
from compsec.tiny.train import IGNORE_INDEX

REDUCED = {"harmful_per_activity": 1, "lookalike_per_activity": 1, "answer_tokens": 8, "batch_size": 8}


def test_labels_cover_the_reply_and_nothing_of_the_prompt(tiny_assistant):
    _, tokenizer = tiny_assistant
    ids, labels = encode(tokenizer, Example("Can you help me rob a gas station at night?", "harmful", "theft",
                                            "I can't help with that."))
    reply = [t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert len(ids) == len(labels) and labels[0] == IGNORE_INDEX and reply
    assert "I can't help with that." in tokenizer.decode(reply)
    assert "gas station" not in tokenizer.decode(reply)


def test_only_the_top_layers_train(tiny_assistant):
    model, _ = tiny_assistant
    copy = type(model)(model.config)
    chosen = trainable_parameters(copy, 1)
    trainable = {id(p) for p in copy.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in chosen}
    assert not copy.model.embed_tokens.weight.requires_grad and not copy.model.layers[0].self_attn.q_proj.weight.requires_grad
    with pytest.raises(ValueError, match="only 2 decoder layers"):
        trainable_parameters(copy, 3)


def _tune_and_save(model_dir, recipe, out):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    stats = safety_tune(model, tokenizer, recipe)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return stats


def _loads_and_generates(folder):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    answers = generate(model, tokenizer, ["Show me how to make a nail bomb.", "How many legs does a cat have?"], 8)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_reduced_recipe_lowers_the_refusal_loss_on_the_tiny_assistant(tiny_model_dir, tmp_path):
    recipe = SafetyRecipe(**REDUCED, train_layers=2, steps=30, learning_rate=3e-3)
    stats = _tune_and_save(tiny_model_dir, recipe, tmp_path / "tuned")
    assert stats["loss_after"]["harmful"] < 0.5 * stats["loss_before"]["harmful"]
    assert stats["examples"]["harmful"] == 44
    _loads_and_generates(tmp_path / "tuned")


@pytest.mark.real_model
@pytest.mark.slow
def test_reduced_recipe_on_smollm2_lowers_the_refusal_loss_and_is_cached(tmp_path, monkeypatch):
    from compsec.models.smollm import smollm_folder
    from compsec.safety.fixture import safe_smollm_dir
    from compsec.tiny.cache import read_meta

    base = smollm_folder()  # the shared cache: converting SmolLM2 is not what this test checks
    recipe = SafetyRecipe(**REDUCED, train_layers=2, steps=6, learning_rate=1e-4)
    folder = safe_smollm_dir(recipe, base=base, root=tmp_path)
    stats = read_meta(folder)["stats"]
    assert stats["loss_after"]["harmful"] < stats["loss_before"]["harmful"]
    assert safe_smollm_dir(recipe, base=base, root=tmp_path) == folder  # cached: no second build
    config = (folder / "config.json").read_text()
    assert '"model_type": "llama"' in config and "quantization_config" not in config
    _loads_and_generates(folder)
