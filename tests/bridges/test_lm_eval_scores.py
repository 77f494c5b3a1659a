"""lm-eval bridge without a model: the payload built from simple_evaluate-shaped outputs, the summary merge,
input validation, and compsec's shipped tasks as lm-eval's TaskManager loads them (lm_eval required)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compsec.audit.stats import mcnemar_exact
from compsec.bridges.lm_eval_bridge import SHIPPED_TASKS, LmEvalRun, hub_offline
from compsec.bridges.lm_eval_scores import build_payload, write_results
from compsec.errors import InputError


def _output(acc_per_doc: list[float], em_per_doc: list[float]) -> dict:
    """What ``lm_eval.simple_evaluate(..., log_samples=True)`` returns, reduced to the fields the bridge reads."""
    def samples(metric, values):
        return [{"doc_id": i, "filter": "none", "metrics": [metric], metric: v} for i, v in enumerate(values)]
    return {
        "results": {"mc": {"alias": "mc", "acc,none": np.float64(np.mean(acc_per_doc)), "acc_stderr,none": "N/A"},
                    "gen": {"alias": "gen", "exact_match,none": float(np.mean(em_per_doc)),
                            "exact_match_stderr,none": 0.1}},
        "n-samples": {"mc": {"original": len(acc_per_doc), "effective": len(acc_per_doc)}},
        "samples": {"mc": samples("acc", acc_per_doc), "gen": samples("exact_match", em_per_doc)},
    }


def _payload() -> dict:
    run = LmEvalRun(model="m", tasks=("mc", "gen"), variants=("nf4",))
    outputs = {"original": _output([1, 1, 1, 0, 1, 1, 1, 1], [1, 1]), "nf4": _output([0, 0, 0, 1, 1, 0, 0, 0], [1, 1])}
    return build_payload(run, outputs, {"original": 1.5, "nf4": 2.0}, version="0.4.13")


def test_scores_keep_lm_evals_numbers_as_plain_floats():
    payload = _payload()
    assert payload["variants"]["original"]["mc"] == {"acc": 0.875, "acc_stderr": None, "n": 8}
    assert payload["variants"]["nf4"]["gen"] == {"exact_match": 1.0, "exact_match_stderr": 0.1, "n": 2}
    assert type(payload["variants"]["original"]["mc"]["acc"]) is float
    json.dumps(payload)  # JSON-safe throughout


def test_flips_pair_documents_against_the_original():
    flips = _payload()["flips"]["nf4"]
    assert flips["mc"]["acc"] == {"lost": [0, 1, 2, 5, 6, 7], "gained": [3], "paired": 8,
                                  "mcnemar_p": mcnemar_exact(6, 1)}
    assert flips["gen"]["exact_match"]["lost"] == [] and flips["gen"]["exact_match"]["mcnemar_p"] == 1.0


def test_results_merge_into_an_existing_summary_without_timings(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"config_hash": "abc", "variants": {}}))
    path = write_results(tmp_path, _payload())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert path == tmp_path / "lm_eval.json" and json.loads(path.read_text())["seconds"]["nf4"] == 2.0
    assert summary["config_hash"] == "abc" and "seconds" not in summary["lm_eval"]
    assert summary["lm_eval"]["variants"]["nf4"]["mc"]["acc"] == 0.25


def test_without_a_summary_only_lm_eval_json_is_written(tmp_path):
    write_results(tmp_path / "new", _payload())
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["lm_eval.json"]


@pytest.mark.parametrize("kwargs, message", [({"tasks": ()}, "no lm-eval task"), ({"limit": 0}, "limit"),
                                             ({"batch_size": 0}, "batch_size"), ({"include": ("/nope",)}, "does not")])
def test_bad_runs_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        LmEvalRun(model="m", **kwargs)


def _lm_eval():
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        pytest.fail("lm_eval is not installed; pip install 'lm_eval==0.4.13' (compsec[lm-eval])")


def test_shipped_tasks_load_through_lm_evals_task_manager():
    _lm_eval()
    from compsec.bridges.lm_eval_bridge import task_manager

    with hub_offline():
        manager = task_manager(LmEvalRun(model="m"))
        tasks = manager.load(list(SHIPPED_TASKS))["tasks"]
    utility, capitals = tasks["compsec_utility_mc"], tasks["compsec_capitals_gen"]
    first = utility.test_docs()[0]
    assert len(utility.test_docs()) == 60 and len(capitals.test_docs()) == 30
    assert utility.doc_to_text(first) == "What is the capital of France?"
    assert utility.doc_to_choice(first)[utility.doc_to_target(first)] == "The capital of France is Paris."
    doc = capitals.test_docs()[0]
    assert capitals.doc_to_text(doc) == "What is the capital of France?"
    assert capitals.doc_to_target(doc) == "The capital of France is Paris."


def test_unknown_task_names_list_the_available_ones():
    _lm_eval()
    from compsec.bridges.lm_eval_bridge import task_manager

    with pytest.raises(InputError, match="compsec_capitals_gen, compsec_utility_mc"):
        task_manager(LmEvalRun(model="m", tasks=("hellaswag",)))


def test_hub_offline_sets_and_restores_the_variables(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    import os

    with hub_offline():
        assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    assert os.environ["HF_HUB_OFFLINE"] == "0" and "HF_DATASETS_OFFLINE" not in os.environ


def test_a_missing_lm_eval_names_the_pip_line(monkeypatch):
    import sys

    from compsec.bridges.lm_eval_bridge import require_lm_eval
    from compsec.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "lm_eval", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'compsec\[lm-eval\]'"):
        require_lm_eval()


def test_an_included_folder_adds_its_tasks(tmp_path):
    _lm_eval()
    from compsec.bridges.lm_eval_bridge import task_manager

    (tmp_path / "mine.yaml").write_text("task: my_local_task\ndataset_path: json\noutput_type: multiple_choice\n")
    manager = task_manager(LmEvalRun(model="m", tasks=("my_local_task", "compsec_utility_mc"), include=(str(tmp_path),)))
    assert {"my_local_task", *SHIPPED_TASKS} <= set(manager.all_tasks)
