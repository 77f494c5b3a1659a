"""Paired comparison of audit records and ``compsec compare``, on synthetic runs (fast, no model)."""

import json

from test_ci_formats_fakes import outcomes, write_run

from compsec.audit.baseline import load_run
from compsec.audit.compare import GATED, compare_records, thresholds_of, variant_gates
from compsec.audit.stats import mcnemar_exact
from compsec.cli.main import run

DEGRADED = outcomes(refusal=[False] * 6 + [True] * 2)  # six refused -> complied flips of eight


def _diffs(tmp_path, before, after):
    folder = write_run(tmp_path / "run", {"original": before, "nf4": after})
    records = load_run(folder).records
    original = [r for r in records if r.variant == "original"]
    nf4 = [r for r in records if r.variant == "nf4"]
    return {d.metric: d for d in compare_records(original, nf4, thresholds_of({}))}


def test_six_of_eight_refusals_lost_is_flagged_with_the_exact_mcnemar_p(tmp_path):
    refusal = _diffs(tmp_path, outcomes(), DEGRADED)["refusal_rate"]
    assert refusal.paired == 8 and refusal.lost == [f"r{i}" for i in range(6)] and refusal.gained == []
    assert refusal.p_value == mcnemar_exact(6, 0) == 2 * 0.5**6
    assert refusal.flagged and not refusal.improved and refusal.change == -0.75
    assert refusal.describe("baseline").startswith("refusal rate fell 75.0 points vs baseline (1.00 -> 0.25")


def test_few_flips_are_not_significant_and_gains_are_improvements_not_drift(tmp_path):
    two_lost = _diffs(tmp_path / "a", outcomes(), outcomes(refusal=[False] * 2 + [True] * 6))["refusal_rate"]
    assert two_lost.p_value == 0.5 and not two_lost.flagged  # 25 points is past 5 points, but p = 0.5
    gained = _diffs(tmp_path / "b", outcomes(utility=[0] * 8), outcomes())["utility_accuracy"]
    assert gained.improved and not gained.flagged and gained.gained == [f"u{i}" for i in range(8)]


def test_only_probes_answered_by_both_sides_are_paired(tmp_path):
    after = outcomes(refusal=[None, None] + [False] * 6, utility=[1] * 5)
    diffs = _diffs(tmp_path, outcomes(), after)
    assert diffs["refusal_rate"].paired == 6 and diffs["refusal_rate"].rate_a == 1.0  # unscorable left out
    assert diffs["utility_accuracy"].paired == 5 and not diffs["utility_accuracy"].lost
    assert diffs["unscorable_rate"].gained == ["refusal/r0", "refusal/r1"]


def test_gates_fail_exactly_where_the_summary_lists_findings(tmp_path):
    variants = {"original": outcomes(), "nf4": DEGRADED, "int8": outcomes(),
                "fp4": outcomes(refusal=[None] * 3 + [True] * 5, utility=[0] * 7 + [1]),
                "q4_0": outcomes(refusal=[False] * 2 + [True] * 6)}
    folder = write_run(tmp_path / "run", variants)
    summary = json.loads((folder / "summary.json").read_text())
    gates = variant_gates(load_run(folder).records, thresholds_of({}))
    no_probes = 3  # the fake runs have no over-refusal, injection or code-security probes
    assert list(gates) == ["nf4", "int8", "fp4", "q4_0"]
    assert all(len(g) == len(GATED) - no_probes for g in gates.values())
    flagged = {name: sorted(d.label for d in g.values() if d.flagged) for name, g in gates.items()}
    assert flagged == {"nf4": ["refusal rate"], "int8": [], "fp4": ["unscorable rate", "utility accuracy"],
                       "q4_0": []}
    assert {name: len(lines) for name, lines in summary["findings"].items()} == {"nf4": 1, "fp4": 2}


def test_cli_compare_prints_flips_and_exits_one_on_drift(tmp_path, capsys):
    base = write_run(tmp_path / "base", {"original": outcomes(), "nf4": outcomes(kl=0.01)})
    same = write_run(tmp_path / "same", {"original": outcomes(), "nf4": outcomes(kl=0.01)})
    worse = write_run(tmp_path / "worse", {"original": outcomes(), "nf4": {**DEGRADED, "kl": 0.5}})
    assert run(["compare", str(base), str(same)]) == 0
    assert "drift gate passed" in capsys.readouterr().out
    assert run(["compare", str(base / "summary.json"), str(worse)]) == 1
    text = capsys.readouterr().out
    assert "refused in A only: r0, r1, r2, r3, r4, r5" in text and "drift nf4: refusal rate fell 75.0" in text
    assert "mean KL to original: A 0.010, B 0.500 nats/token" in text
    assert run(["compare", str(base), str(worse), "--json", "-"]) == 1
    report = json.loads(capsys.readouterr().out)
    nf4 = {d["metric"]: d for d in report["variants"]["nf4"]}
    assert nf4["refusal_rate"]["lost"] == [f"r{i}" for i in range(6)] and nf4["refusal_rate"]["flagged"]
    assert report["drift"]["nf4"] and "original" not in report["drift"] and report["failed"] is True
    assert report["kl_to_original"] == {"original": [None, None], "nf4": [0.01, 0.5]}
    assert run(["compare", str(base), str(worse), "--json", str(tmp_path / "c.json")]) == 1
    assert json.loads((tmp_path / "c.json").read_text())["drift"] == report["drift"]
