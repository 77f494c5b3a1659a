"""Second opinions in ``compsec check``: picklescan, fickling and modelscan beside compsec's own scanner, over
a hostile corpus whose every case is first shown to really run code when loaded."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.integrity import external_scanners
from compsec.integrity.collect import integrity_findings
from compsec.integrity.external_scanners import VERDICTS, Opinion, run_scanner
from compsec.integrity.hostile_corpus import CASES
from compsec.integrity.second_opinions import disagreement, second_opinions

LOADERS = {  # how each directly loadable case is loaded by the library that would load it
    "plain os.system pickle": "pickle.load(f)",
    "protocol 0 INST": "pickle.load(f)",
    "memoized STACK_GLOBAL": "pickle.load(f)",
    "benign pickle then hostile one": "pickle.load(f); pickle.load(f)",  # legacy torch.load reads pickles in a row
    "no STOP opcode": "pickle.load(f)",
    "numpy object .npy": "numpy.load(f, allow_pickle=True)",
    ".joblib pickle": "pickle.load(f)",
    "numpy runstring gadget": "pickle.load(f)",
    "pydoc pipepager gadget": "pickle.load(f)",
    "cProfile.run gadget": "pickle.load(f)",
    "gzip-compressed joblib": "import joblib; joblib.load(f)",
    "xz-compressed joblib": "import joblib; joblib.load(f)",
    "zlib-compressed joblib": "import joblib; joblib.load(f)",
}
# Measured with picklescan 1.0.5, fickling 0.1.12, modelscan 0.8.8 (the pins of the 'scanners' extra).
EXPECTED = {
    "plain os.system pickle": ("flagged", "flagged", "flagged", "flagged"),
    "protocol 0 INST": ("flagged", "flagged", "flagged", "flagged"),
    "memoized STACK_GLOBAL": ("flagged", "flagged", "flagged", "flagged"),
    "benign pickle then hostile one": ("flagged", "flagged", "flagged", "flagged"),
    "no STOP opcode": ("flagged", "flagged", "flagged", "error"),
    "torch zip data.pkl": ("flagged", "flagged", "flagged", "flagged"),
    "torch zip payload in a .bin member": ("flagged", "flagged", "flagged", "clean"),
    "zip inside a zip": ("flagged", "not scanned", "not scanned", "error"),
    "tar archive": ("flagged", "clean", "flagged", "not scanned"),
    "numpy object .npy": ("flagged", "flagged", "flagged", "error"),
    ".joblib pickle": ("flagged", "flagged", "flagged", "flagged"),
    "numpy runstring gadget": ("flagged", "flagged", "flagged", "clean"),
    "pydoc pipepager gadget": ("flagged", "flagged", "flagged", "clean"),
    "cProfile.run gadget": ("warned", "flagged", "flagged", "clean"),
    "gzip-compressed joblib": ("flagged", "clean", "flagged", "error"),
    "xz-compressed joblib": ("flagged", "clean", "flagged", "error"),
    "zlib-compressed joblib": ("flagged", "clean", "flagged", "error"),
    "pickle in a 7z archive": ("flagged", "flagged", "flagged", "not scanned"),
}


def build(name: str, folder: Path) -> Path:
    folder.mkdir()
    return CASES[name][0](folder)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_corpus_case_really_runs_code_when_loaded(name, tmp_path):
    path = build(name, tmp_path / "case")
    script = f"import pickle, numpy\nwith open({str(path)!r}, 'rb') as f:\n    {LOADERS[name]}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert "pwned" in done.stdout, (done.stdout, done.stderr)


def test_every_case_is_listed_and_measured():
    assert set(EXPECTED) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdicts_per_case_and_check_never_passes_it(name, tmp_path, capsys):
    for tool in ("picklescan", "fickling", "modelscan"):
        pytest.importorskip(tool, reason="needs the 'scanners' extra: pip install 'compsec[scanners]'")
    path = build(name, tmp_path / "case")
    opinions = second_opinions(path, integrity_findings(path))
    assert tuple(o.verdict for o in opinions) == EXPECTED[name]
    assert [o.tool for o in opinions] == ["compsec", "picklescan", "fickling", "modelscan"]
    assert run(["check", str(path), "--json", str(tmp_path / "report.json")]) in (1, 2)
    report = json.loads((tmp_path / "report.json").read_text())
    assert [o["verdict"] for o in report["second_opinions"]] == list(EXPECTED[name])
    assert (report["disagreement"] is None) == (set(EXPECTED[name]) == {"flagged"})


def test_other_tools_flag_becomes_a_warning_finding(tmp_path, capsys):
    pytest.importorskip("picklescan")
    path = build("cProfile.run gadget", tmp_path / "case")
    assert run(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "warning" in out and "picklescan 1.0.5 flags it" in out
    assert "scanners disagree: flagged by picklescan, fickling; not flagged by compsec (warned)" in out


def test_missing_and_crashing_tools_are_not_run_and_error_never_clean(tmp_path, monkeypatch):
    path = build("plain os.system pickle", tmp_path / "case")

    def crash(_path):
        raise RuntimeError("scanner blew up")

    monkeypatch.setitem(external_scanners.SCANNERS, "crashing", ("pytest", crash))
    monkeypatch.setitem(external_scanners.SCANNERS, "absent", ("no-such-package-compsec", crash))
    assert run_scanner("crashing", path).verdict == "error"
    assert run_scanner("absent", path) == Opinion("absent", None, "not run",
                                                  "not installed: pip install 'compsec[scanners]'")
    opinions = second_opinions(path, integrity_findings(path), tools=("crashing", "absent"))
    assert [o.verdict for o in opinions] == ["flagged", "error", "not run"]
    assert disagreement(opinions) == "flagged by compsec; not flagged by crashing (error)"


def test_safetensors_folder_gets_no_second_opinions(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert second_opinions(tmp_path, []) == []


@given(st.lists(st.sampled_from(VERDICTS), min_size=1, max_size=6))
def test_disagreement_exactly_when_a_flag_meets_a_tool_that_ran_and_did_not_flag(verdicts):
    opinions = [Opinion(f"tool{i}", "1", verdict) for i, verdict in enumerate(verdicts)]
    ran = [v for v in verdicts if v != "not run"]
    split = disagreement(opinions)
    assert (split is not None) == ("flagged" in ran and any(v != "flagged" for v in ran))
    if split:
        assert "not run" not in split


@settings(max_examples=15, deadline=None)
@given(st.binary(min_size=1, max_size=64))
def test_tensor_storage_that_starts_like_a_pickle_is_not_an_error(tail):
    import tempfile

    import torch

    from compsec.integrity.pickle_scan import pickle_findings

    storage = torch.tensor(list(b"\x80\x04" + tail), dtype=torch.uint8)  # raw bytes opening with PROTO 4
    with tempfile.TemporaryDirectory() as folder:
        torch.save({"w": storage}, Path(folder) / "model.pt")
        findings = pickle_findings(Path(folder) / "model.pt")
    assert [f.severity for f in findings] == ["warning"]  # only "pickle-based weights"


def test_archives_nested_too_deep_are_refused(tmp_path):
    from compsec.integrity.hostile_corpus import _zip
    from compsec.integrity.pickle_archives import MAX_DEPTH

    blob = pickle.dumps({})
    for _ in range(MAX_DEPTH + 1):
        blob = _zip({"inner.zip": blob})
    (tmp_path / "deep.zip").write_bytes(blob)
    assert run(["check", str(tmp_path / "deep.zip"), "--no-second-opinions"]) == 2
