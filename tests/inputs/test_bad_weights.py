"""Every verb that loads a model refuses weights that are not the config's tensors or not finite: exit 2, one
line on stderr naming the tensors, nothing written. The legitimate tiny assistant (tied embeddings) still loads.
"""

from __future__ import annotations

import json
import time

import pytest
import torch

from compsec.cli.main import run
from compsec.errors import InputError
from compsec.models.io import load_model

# verb → argv for model folder M writing (if at all) under O; every option keeps the work tiny.
VERBS = {
    "check": lambda m, o: ["check", m],
    "layers": lambda m, o: ["layers", m, "--format", "nf4", "--json", f"{o}/rows.json"],
    "harden": lambda m, o: ["harden", m, "--out", o],
    "prune": lambda m, o: ["prune", m, "--sparsity", "0.5", "--out", o],
    "quantize": lambda m, o: ["quantize", m, "--format", "nf4", "--protect", "none", "--out", o],
    "heads": lambda m, o: ["heads", m, "--limit", "1", "--max-new-tokens", "2", "--out", f"{o}/heads.json"],
    "audit": lambda m, o: ["audit", m, "--probes", "refusal", "--limit", "1", "--max-new-tokens", "2",
                           "--no-contrast", "--out", o],
    "attack": lambda m, o: ["attack", "--model", m, "--inject-steps", "1", "--repair-steps", "1",
                            "--probe-limit", "1", "--out", o],
    "distill": lambda m, o: ["distill", m, "--student", f"{o}.student.json", "--steps", "1", "--out", o],
    "search": lambda m, o: ["search", m, "--variant", "nf4", "--budget", "50", "--seed-limit", "1", "--out", o],
    "serve": lambda m, o: ["serve", m, "--port", "0"],
    "lm-eval": lambda m, o: ["lm-eval", m, "--tasks", "compsec_utility_mc", "--limit", "1", "--out", o],
}
# the bad model as a folder variant of a sound original: refused before the original runs
VARIANT_VERBS = {
    "audit": lambda t, m, o: ["audit", t, "--variants", m, "--probes", "refusal", "--limit", "1",
                              "--max-new-tokens", "2", "--no-contrast", "--out", o],
    "serve": lambda t, m, o: ["serve", t, "--variant", m, "--port", "0"],
}
KINDS = ("renamed", "missing", "extra", "shape", "nan", "inf")


@pytest.fixture
def no_serving(monkeypatch):
    """``serve`` sleeps until Ctrl-C once it serves: make that sleep a Ctrl-C so a served model returns 0."""
    def interrupt(_seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupt)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("verb", sorted(VERBS))
def test_verb_refuses_bad_weights(verb, kind, bad_models, tmp_path, capsys, no_serving):
    bad, out = bad_models[kind], tmp_path / "out"
    (tmp_path / "out.student.json").write_text(json.dumps({"num_hidden_layers": 1}))
    code = run(VERBS[verb](str(bad.folder), str(out)))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "internal error" not in err
    assert str(bad.folder) in err and all(name in err for name in bad.tensors), err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))


@pytest.mark.parametrize("kind", ["renamed", "nan"])
@pytest.mark.parametrize("verb", sorted(VARIANT_VERBS))
def test_bad_folder_variant_is_refused_before_any_work(verb, kind, bad_models, tiny_model_dir, tmp_path, capsys,
                                                       no_serving):
    bad, out = bad_models[kind], tmp_path / "out"
    code = run(VARIANT_VERBS[verb](str(tiny_model_dir), str(bad.folder), str(out)))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and all(name in err for name in bad.tensors), err
    assert not out.exists()


@pytest.mark.parametrize("kind", ["nan", "inf"])
@pytest.mark.parametrize("bad_side", ["a", "b"])
def test_diff_refuses_nonfinite_weights_on_either_side(kind, bad_side, bad_models, tiny_model_dir, tmp_path, capsys):
    bad, out = bad_models[kind], tmp_path / "diff.json"
    pair = [str(bad.folder), str(tiny_model_dir)] if bad_side == "a" else [str(tiny_model_dir), str(bad.folder)]
    code = run(["diff", *pair, "--json", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"{bad.folder}: NaN/Inf weights" in err, err
    assert all(name in err for name in bad.tensors) and not out.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_load_model_names_the_tensors(kind, bad_models):
    bad = bad_models[kind]
    with pytest.raises(InputError) as info:
        load_model(bad.folder)
    assert all(name in str(info.value) for name in bad.tensors) and "\n" not in str(info.value)


def test_nonfinite_message_counts_every_value(bad_models):
    with pytest.raises(InputError, match=r"NaN/Inf weights in 1 tensor \(model\.layers\.0\.mlp\.up_proj\.weight: 2 values"):
        load_model(bad_models["inf"].folder)


def test_the_tiny_assistant_with_tied_embeddings_still_loads(tiny_model_dir, tiny_assistant):
    model, tokenizer = load_model(tiny_model_dir)
    assert model.config.tie_word_embeddings and tokenizer is not None
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    reference, _ = tiny_assistant
    assert all((a == b).all() for a, b in zip(model.state_dict().values(), reference.state_dict().values()))


def test_distill_stops_when_the_loss_becomes_nonfinite(tiny_model_dir, tmp_path, capsys):
    student, out = tmp_path / "student.json", tmp_path / "out"
    student.write_text(json.dumps({"num_hidden_layers": 1}))
    code = run(["distill", str(tiny_model_dir), "--student", str(student), "--out", str(out), "--steps", "4",
                "--batch-size", "4", "--lr", "1e30"])  # the first step throws the weights to ~1e30: logits overflow
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "distillation loss became nan" in err and not out.exists()


def test_classifier_distillation_stops_at_the_first_nonfinite_loss():
    from compsec.distill.train import DistillConfig, distill_classifier

    torch.manual_seed(0)
    teacher, student = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    with torch.no_grad():
        teacher.weight[0, 0] = float("inf")  # every teacher logit row holds Inf or NaN
    images, labels = torch.rand(16, 4), torch.randint(0, 3, (16,))
    with pytest.raises(InputError, match="loss became nan at step 1;"):
        distill_classifier(teacher, student, images, labels, DistillConfig(steps=3, batch_size=8))


@pytest.mark.parametrize("verb", ["check", "layers", "serve"])
def test_the_sound_tiny_assistant_passes_the_same_commands(verb, tiny_model_dir, tmp_path, capsys, no_serving):
    """Control: the commands above succeed on the folder the bad copies were made from."""
    (tmp_path / "out").mkdir()
    assert run(VERBS[verb](str(tiny_model_dir), str(tmp_path / "out"))) == 0, capsys.readouterr().err
