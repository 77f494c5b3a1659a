"""The integrity verbs through the CLI: manifest, diff, provenance, check — exit codes and one-line errors."""

import json
import pickle
import struct
import subprocess
import sys

import pytest
import torch
from tiny_checkpoints import TARGET, one_ulp_inside_box, rewrite_tensor, save_tiny_llama

from compsec.cli.main import run
from compsec.integrity.provenance import record_provenance


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def test_manifest_create_and_verify(tiny, tmp_path, capsys):
    manifest = tmp_path / "manifest.json"
    assert run(["manifest", "create", str(tiny), "-o", str(manifest)]) == 0
    assert json.loads(manifest.read_text())["_type"] == "https://in-toto.io/Statement/v1"
    assert run(["manifest", "verify", str(tiny), str(manifest)]) == 0
    rewrite_tensor(tiny, tmp_path / "b", TARGET, one_ulp_inside_box)
    capsys.readouterr()
    assert run(["manifest", "verify", str(tmp_path / "b"), str(manifest)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "changed file model.safetensors", f"changed tensor model.safetensors: {TARGET}"]
    manifest.write_text("{}")
    assert run(["manifest", "verify", str(tiny), str(manifest)]) == 2


def test_manifest_written_inside_the_folder_excludes_itself(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "m", TARGET, lambda w: w)
    inside = tmp_path / "m" / "manifest.json"
    assert run(["manifest", "create", str(tmp_path / "m"), "-o", str(inside)]) == 0
    assert run(["manifest", "verify", str(tmp_path / "m"), str(inside)]) == 0


def test_diff_reports_a_change_invisible_after_nf4(tiny, tmp_path, capsys):
    rewrite_tensor(tiny, tmp_path / "b", TARGET, one_ulp_inside_box)
    report = tmp_path / "diff.json"
    assert run(["diff", str(tiny), str(tmp_path / "b"), "--formats", "nf4", "--json", str(report)]) == 1
    assert "all changes invisible after nf4" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["changed"][0]["name"] == TARGET and data["changed"][0]["same_after"] == {"nf4": True}
    assert run(["diff", str(tiny), str(tiny)]) == 0
    assert run(["diff", str(tiny), str(tmp_path / "b"), "--formats", "nf5"]) == 2


def test_provenance_verify_exit_codes(tiny, tmp_path):
    rewrite_tensor(tiny, tmp_path / "out", TARGET, lambda w: w)
    assert run(["provenance", "verify", str(tmp_path / "out"), "--source", str(tiny)]) == 2  # no record yet
    record_provenance(tmp_path / "out", tiny, "copy")
    assert run(["provenance", "verify", str(tmp_path / "out"), "--source", str(tiny)]) == 0
    assert run(["provenance", "show", str(tmp_path / "out")]) == 0
    rewrite_tensor(tiny, tmp_path / "other", TARGET, lambda w: w + 1)
    assert run(["provenance", "verify", str(tmp_path / "out"), "--source", str(tmp_path / "other")]) == 1


def test_check_clean_and_warning(tiny, tmp_path):
    assert run(["check", str(tiny)]) == 0
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pt")
    assert run(["check", str(tmp_path / "plain.pt")]) == 1  # a pickle: warned about, not refused


class _RunsCode:
    def __reduce__(self):
        return (__import__("os").system, ("echo pwned",))


def _hostile_files(folder):
    """path → reason of files compsec must refuse (exit 2, one line, no traceback)."""
    (folder / "truncated.safetensors").write_bytes(struct.pack("<Q", 1000) + b'{"a":')
    (folder / "huge_header.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    (folder / "bad_magic.gguf").write_bytes(b"GGUX" + b"\0" * 64)
    (folder / "evil.pkl").write_bytes(pickle.dumps(_RunsCode()))
    config = folder / "templ"
    config.mkdir()
    (config / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}"}))
    escape = folder / "escape"
    escape.mkdir()
    (escape / "weights.safetensors").symlink_to("/etc/passwd")
    return {folder / "truncated.safetensors": "truncated", folder / "huge_header.safetensors": "byte limit",
            folder / "bad_magic.gguf": "bad magic", folder / "evil.pkl": "system", config: "template injection",
            escape: "outside the model folder"}


def test_hostile_files_exit_2_with_one_line_and_no_traceback(tmp_path):
    for path, reason in _hostile_files(tmp_path).items():
        proc = subprocess.run([sys.executable, "-m", "compsec", "check", str(path)], check=False,
                              capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, (path.name, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, path.name
        assert proc.stderr.startswith("error: ") and reason in proc.stderr, (path.name, proc.stderr)


def test_hostile_files_are_refused_by_manifest_and_diff_too(tmp_path, tiny):
    files = list(_hostile_files(tmp_path))
    assert run(["manifest", "create", str(files[0]), "-o", str(tmp_path / "m.json")]) == 2
    assert run(["manifest", "create", str(files[-1]), "-o", str(tmp_path / "m.json")]) == 2
    assert run(["diff", str(tiny), str(files[1])]) == 2


def test_integrity_findings_lists_every_hostile_file_without_raising(tmp_path):
    from compsec.integrity.collect import integrity_findings

    files = _hostile_files(tmp_path)
    findings = integrity_findings(tmp_path)
    errors = {(f.kind, f.path) for f in findings if f.severity == "error"}
    assert ("malformed", str(tmp_path / "truncated.safetensors")) in errors
    assert ("malformed", str(tmp_path / "bad_magic.gguf")) in errors
    assert ("dangerous-import", str(tmp_path / "evil.pkl")) in errors
    assert ("template-injection", str(tmp_path / "templ" / "tokenizer_config.json")) in errors
    assert ("symlink-escape", str(tmp_path / "escape" / "weights.safetensors")) in errors
    assert len({path for _, path in errors}) == len(files)


def test_check_json_output(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_RunsCode()))
    assert run(["check", str(tmp_path / "evil.pkl"), "--json", str(tmp_path / "f.json")]) == 2
    report = json.loads((tmp_path / "f.json").read_text())
    assert [f["kind"] for f in report["findings"]] == ["pickle-file", "dangerous-import"]
    assert report["second_opinions"][0] == {"tool": "compsec", "version": "0.1.0", "verdict": "flagged",
                                            "detail": "posix.system"}
