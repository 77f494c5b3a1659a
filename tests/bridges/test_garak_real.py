"""The garak bridge end to end with the real garak CLI (slow).

garak pins transformers below ours, so it lives in its own environment, ``.venv-garak`` at the repository
root (or the executable named by ``$COMPSEC_GARAK``). The tiny assistant is served over a local
OpenAI-compatible endpoint, original then nf4; garak probes each (offline, reports under tmp_path, its XDG
folders too) and ``compsec garak-compare`` pairs the two reports.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from compsec.bridges.chat_server import serve_variant
from compsec.bridges.garak_report import read_report
from compsec.cli.main import run
from compsec.tiny.chat import generate

ROOT = Path(__file__).resolve().parents[2]
PROBE, DETECTOR, GENERATIONS = "lmrc.Bullying", "mitigation.MitigationBypass", 2
MAKE_VENV = ("python3 -m venv .venv-garak && .venv-garak/bin/pip install torch==2.13.0 garak==0.17.1 "
             "(at the repository root; or set COMPSEC_GARAK to a garak executable)")


def _garak() -> Path:
    garak = Path(os.environ.get("COMPSEC_GARAK") or ROOT / ".venv-garak" / "bin" / "garak")
    if not garak.is_file():
        pytest.fail(f"garak executable {garak} is missing; create its environment with: {MAKE_VENV}")
    return garak


def _probe(garak: Path, url: str, name: str, tmp_path: Path) -> Path:
    options = tmp_path / f"{name}.generator.json"
    options.write_text(json.dumps({"openai": {"OpenAICompatible": {
        "uri": url, "api_key": "local", "suppressed_params": ["n", "frequency_penalty", "presence_penalty"]}}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           **{var: str(tmp_path / "xdg" / var) for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")}}
    prefix = tmp_path / name
    command = [str(garak), "--target_type", "openai.OpenAICompatible", "--target_name", name,
               "--generator_option_file", str(options), "--probes", PROBE, "--detectors", DETECTOR,
               "--generations", str(GENERATIONS), "--seed", "0", "--report_prefix", str(prefix)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, f"garak failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return Path(f"{prefix}.report.jsonl")


@pytest.mark.slow
def test_garak_reports_of_original_and_nf4_compare_with_garaks_own_counts(tiny_assistant, tiny_model_dir,
                                                                          tmp_path):
    garak = _garak()
    loaded = copy.deepcopy(tiny_assistant)
    reports = {}
    for variant in ("original", "nf4"):
        with serve_variant(str(tiny_model_dir), variant, loaded=loaded, max_new_tokens=24) as url:
            reports[variant] = _probe(garak, url, variant, tmp_path)
    code = run(["garak-compare", str(reports["original"]), str(reports["nf4"]), "--out", str(tmp_path / "cmp")])
    comparison = json.loads((tmp_path / "cmp" / "garak_compare.json").read_text())
    stats = comparison["probes"][PROBE][DETECTOR]
    assert code == (1 if comparison["findings"] else 0)
    assert comparison["unpaired"] == {"original_only": 0, "compressed_only": 0}
    assert stats["paired"] == 7  # lmrc.Bullying's seven prompts, every one paired by prompt text
    for variant, side in (("original", "original"), ("nf4", "compressed")):
        report = read_report(reports[variant])
        assert report.garak_version == "0.17.1" and report.target.endswith(variant)
        assert all(len(a.outputs) == GENERATIONS for a in report.attempts)
        garak_eval = next(e for e in report.evals if e["probe"] == PROBE and e["detector"] == DETECTOR)
        assert stats[f"{side}_hits"] == garak_eval["fails"]  # garak's own count of outputs that got through
        assert stats[f"{side}_outputs"] == garak_eval["passed"] + garak_eval["fails"]
    original = read_report(reports["original"]).attempts
    expected = generate(*tiny_assistant, [a.prompt for a in original], max_new_tokens=24)
    assert [a.outputs for a in original] == [(text,) * GENERATIONS for text in expected]  # served = compsec's
    flipped = len(stats["became_hits"]) + len(stats["stopped_hitting"])
    assert flipped <= stats["paired"]
    print(f"garak {PROBE}/{DETECTOR}: original {stats['original_hit_rate']:.3f}, nf4 "
          f"{stats['compressed_hit_rate']:.3f}, became hits {len(stats['became_hits'])}, stopped "
          f"{len(stats['stopped_hitting'])}, p={stats['mcnemar_p']:.3g}")
