"""scan-many without Ray: source lists, the results table, exit codes, the report, and bad input refused before
anything starts (exit 2, one line, nothing written)."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.cluster.config import ScanManyConfig
from compsec.cluster.driver import exit_code
from compsec.cluster.report import render_report
from compsec.cluster.sources import read_sources
from compsec.cluster.table import ResultsTable, latest_rows
from compsec.errors import InputError

from .conftest import write_model


def _row(source, digest, verdict, **extra):
    return {"source": source, "digest": digest, "verdict": verdict, "score": extra.get("score", 0.0),
            "error": extra.get("error", ""), "seconds": 0.5, "bytes_read": 10, "file_bytes": 20, "params": 5,
            "sample_seed": None, "findings": 0, "top_findings": "[]", "worker": "w:1"}


def test_list_files_text_and_jsonl(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# corpus\na.safetensors\n\nhttp://host/b.safetensors\n"
                       '{"source": "s3://bucket/c.safetensors"}\nfile:///abs/d.safetensors\na.safetensors\n')
    assert read_sources(listing) == [str(tmp_path / "a.safetensors"), "http://host/b.safetensors",
                                     "s3://bucket/c.safetensors", "/abs/d.safetensors"]
    listing.write_text('{"path": "x"}\n')
    with pytest.raises(InputError, match="list.txt:1: a JSONL line needs"):
        read_sources(listing)
    listing.write_text("# nothing\n")
    with pytest.raises(InputError, match="lists no model"):
        read_sources(listing)


def test_folder_tree_model_folders_files_and_symlinks(tmp_path):
    (tmp_path / "org" / "model").mkdir(parents=True)
    (tmp_path / "org" / "model" / "config.json").write_text("{}")
    (tmp_path / "org" / "model" / "model.safetensors").write_bytes(b"")
    (tmp_path / "loose.safetensors").write_bytes(b"")
    (tmp_path / "weights.bin").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a model")
    os.symlink("/etc", tmp_path / "escape")
    assert read_sources(tmp_path) == [str(tmp_path / name) for name in
                                      ("escape", "loose.safetensors", "weights.bin", "org/model")]


def test_table_appends_parts_and_newest_row_wins(tmp_path):
    table = ResultsTable(tmp_path, flush_rows=2)
    for row in (_row("a", "d1", "error", error="timeout"), _row("b", "d2", "clean"), _row("a", "d1", "clean")):
        table.add(row)
    assert len(list((tmp_path / "results.parquet").glob("part-*.parquet"))) == 1  # 2 rows flushed, 1 pending
    table.flush()
    rows = ResultsTable(tmp_path).rows()
    assert [r["verdict"] for r in rows] == ["error", "clean", "clean"] and rows[0]["scanned_at"]
    assert [(r["source"], r["verdict"]) for r in latest_rows(rows)] == [("b", "clean"), ("a", "clean")]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.parquet").write_text("not a folder")
    with pytest.raises(InputError, match="is a file"):
        ResultsTable(tmp_path / "x")


@given(st.lists(st.sampled_from(["clean", "suspicious", "error"]), max_size=6))
def test_exit_code_error_beats_suspicious_beats_clean_and_nothing_is_an_error(verdicts):
    code = exit_code([{"verdict": v} for v in verdicts])
    assert code == (2 if not verdicts or "error" in verdicts else 1 if "suspicious" in verdicts else 0)


def test_report_renders_counts_findings_and_escaped_errors(tmp_path):
    table = ResultsTable(tmp_path)
    table.add(_row("good", "d1", "clean"))
    table.add({**_row("bad", "d2", "suspicious", score=42.0), "top_findings":
               '[{"tensor": "w", "format": "nf4", "detector": "edge-mass", "score": 9.5, "explanation": ""}]'})
    table.add(_row("<script>", "d3", "error", error="header claims <huge>"))
    table.flush()
    path, facts = render_report(tmp_path)
    page = path.read_text()
    assert (facts["clean"], facts["suspicious"], facts["error"]) == (1, 1, 1)
    assert "w nf4 edge-mass (9.5)" in page and "&lt;script&gt;" in page and "<script>" not in page
    assert run(["scan-many", "--report", str(tmp_path)]) == 2


@pytest.mark.parametrize("args, message", [
    (["missing.txt", "--out", "o"], "no such list file"),
    (["list.txt"], "give SOURCES and --out"),
    (["list.txt", "--out", "busy"], "already holds files"),
    (["list.txt", "--out", "o", "--formats", "nope"], "nope"),
    (["--report", "empty"], "holds no scan-many results"),
    (["list.txt", "--out", "o", "--report", "o"], "give no SOURCES"),
])
def test_bad_input_exit_2_one_line_nothing_written(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path / "m.safetensors", "benign", 0)
    (tmp_path / "list.txt").write_text("m.safetensors\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "other.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert run(["scan-many", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_deadline_that_lands_in_compiled_code_still_reads_timed_out(tmp_path):
    """SIGALRM inside the numba kernel or torch surfaces wrapped (SystemError "... returned a result with an
    exception set"); the row must still say the model timed out, whatever the scan was doing at that moment."""
    from compsec.cluster.task import scan_one

    write_model(tmp_path / "big.safetensors", "benign", 0, (2048, 2048))
    row = scan_one(str(tmp_path / "big.safetensors"), ScanManyConfig(timeout_s=1))
    assert row["verdict"] == "error" and row["error"] == "timed out after 1 s (--timeout)"


def test_timeout_is_found_through_the_exception_chain():
    from compsec.cluster.limits import ScanTimeout
    from compsec.cluster.task import _timeout_in

    try:
        try:
            raise ScanTimeout("timed out after 3 s (--timeout)")
        except ScanTimeout as inner:
            raise SystemError("CPUDispatcher(<function tally_pass>) returned a result with an exception set") from inner
    except SystemError as err:
        assert _timeout_in(err) == "timed out after 3 s (--timeout)"
    assert _timeout_in(ValueError("bad header")) is None



def test_a_ray_address_nobody_listens_on_fails_at_once_and_writes_nothing(tmp_path, capsys):
    import socket
    import time

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    (tmp_path / "tree").mkdir()
    write_model(tmp_path / "tree" / "m.safetensors", "benign", 0)
    started = time.monotonic()
    assert run(["scan-many", str(tmp_path / "tree"), "--out", str(tmp_path / "out"), "--ray", address]) == 2
    assert time.monotonic() - started < 30  # not ray.init's minutes of retries
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and f"--ray {address}: no Ray cluster answers there" in error
    assert not list(tmp_path.glob("out/*.parquet"))
