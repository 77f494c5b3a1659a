"""Empty is not clean: a verb whose input leaves it nothing to examine exits 2 with one line, writes nothing,
and (for the model verbs) says so before any model work: the model given here is one compsec refuses, so an
error about the model instead of the empty input would mean the model was loaded first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

from compsec.cli.main import run


def _empty_folder(tmp: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _config_only(tmp: Path) -> Path:
    (tmp / "config-only").mkdir()
    (tmp / "config-only" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return tmp / "config-only"


def _no_tensors(tmp: Path, name: str = "none") -> Path:
    (tmp / name).mkdir()
    save_file({}, str(tmp / name / "model.safetensors"))
    return tmp / name


def _empty_file(tmp: Path, name: str) -> Path:
    (tmp / name).write_text("")
    return tmp / name


def _empty_manifest(tmp: Path) -> Path:
    manifest = {"_type": "https://in-toto.io/Statement/v1", "subject": [],
                "predicateType": "https://compsec.dev/tensor-manifest/v1", "predicate": {"files": {}}}
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    return tmp / "manifest.json"


# case → (argv builder from (tmp folder, a refused model folder, the output path), words the message must hold)
CASES = {
    "check empty folder": (lambda t, m, o: ["check", str(_empty_folder(t))], "nothing was checked"),
    "check config only": (lambda t, m, o: ["check", str(_config_only(t))], "no model weights found"),
    "check unknown file": (lambda t, m, o: ["check", str(_empty_file(t, "notes.txt"))], "nothing was checked"),
    "check no tensors": (lambda t, m, o: ["check", str(_no_tensors(t))], "holds no tensors"),
    "manifest create empty": (lambda t, m, o: ["manifest", "create", str(_empty_folder(t)), "-o", f"{o}/m.json"],
                              "attest nothing"),
    "manifest verify empty": (lambda t, m, o: ["manifest", "verify", str(_empty_folder(t)), str(_empty_manifest(t))],
                              "attests nothing"),
    "diff no tensors": (lambda t, m, o: ["diff", str(_no_tensors(t, "a")), str(_no_tensors(t, "b"))],
                        "nothing to compare"),
    "audit empty probe file": (lambda t, m, o: ["audit", str(m), "--probes", str(_empty_file(t, "p.jsonl")),
                                                "--out", str(o)], "holds no probes"),
    "audit empty csv probes": (lambda t, m, o: ["audit", str(m), "--probes", str(_csv_header_only(t)),
                                                "--out", str(o)], "holds no probes"),
    "audit no probe set": (lambda t, m, o: ["audit", str(m), "--probes", ",", "--no-contrast", "--out", str(o)],
                           "nothing to audit"),
    "heads empty probe file": (lambda t, m, o: ["heads", str(m), "--probes", str(_empty_file(t, "p.jsonl")),
                                                "--out", f"{o}/heads.json"], "holds no probes"),
    "search empty seeds": (lambda t, m, o: ["search", str(m), "--seeds", str(_empty_file(t, "p.jsonl")),
                                            "--out", str(o)], "holds no probes"),
    "survival no compression": (lambda t, m, o: ["survival", "--compressions", ",", "--out", str(o)],
                                "no compression given"),
}


def _csv_header_only(tmp: Path) -> Path:
    (tmp / "p.csv").write_text("id,prompt,kind\n")
    return tmp / "p.csv"


@pytest.mark.parametrize("case", sorted(CASES))
def test_empty_input_is_an_error_not_a_pass(case, bad_models, tmp_path, capsys):
    build, words = CASES[case]
    out = tmp_path / "out"
    code = run(build(tmp_path, bad_models["renamed"].folder, out))
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and words in err, err
    assert not out.exists()
