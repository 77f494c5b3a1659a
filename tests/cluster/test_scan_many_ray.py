"""scan-many end to end on a real local Ray cluster (a head and one worker node, separate processes): >= 50
models, hostile files and an HTTP Range source, rows equal to single-process scans, resume, deadline."""

from __future__ import annotations

import pytest

from compsec.cli.main import run
from compsec.cluster.table import ResultsTable
from compsec.scan import ScanConfig, scan_path

from .conftest import write_model
from .corpus import HOSTILE, build_corpus

SAMPLE, SEED = 2048, 5


@pytest.mark.slow
def test_scan_many_on_a_cluster_equals_single_process_scans(ray_cluster, range_server, tmp_path, capsys):
    sources, twins = build_corpus(tmp_path / "corpus", range_server.root, range_server.url)
    assert len(sources) >= 50
    listing = tmp_path / "models.txt"
    listing.write_text("\n".join(sources) + "\n")
    args = ["scan-many", str(listing), "--out", str(tmp_path / "out"), "--ray", ray_cluster.address,
            "--workers", "2", "--sample", str(SAMPLE), "--seed", str(SEED)]
    assert run(args) == 2  # hostile files are error rows; the run itself completes
    rows = {row["source"]: row for row in ResultsTable(tmp_path / "out").rows()}
    assert set(rows) == set(sources)
    assert len({row["worker"].split(":")[1] for row in rows.values() if row["worker"]}) >= 2  # both nodes' workers
    for source, local in twins.items():
        row = rows[source]
        hostile = local is None or local.name in HOSTILE
        if hostile:
            assert row["verdict"] == "error" and row["error"], source
            continue
        expected = scan_path(local, ScanConfig(sample_weights=SAMPLE, seed=SEED))
        assert (row["verdict"], row["score"], row["params"]) == (expected.verdict, expected.score,
                                                                 expected.params_scanned), source
    verdicts = [row["verdict"] for row in rows.values()]
    assert verdicts.count("suspicious") >= 6 and verdicts.count("clean") >= 30
    remote = [rows[s] for s in sources if s.startswith("http") and rows[s]["verdict"] != "error"]
    assert len(remote) == 2 and all(r["bytes_read"] < r["file_bytes"] for r in remote)
    assert "report.html" in capsys.readouterr().out and (tmp_path / "out" / "report.html").is_file()

    written = len(ResultsTable(tmp_path / "out").rows())
    assert run(args) == 2  # resume: every digest already there is skipped
    again = ResultsTable(tmp_path / "out").rows()
    assert len(again) - written == sum(1 for row in rows.values() if not row["digest"])
    assert run(["scan-many", "--report", str(tmp_path / "out")]) == 2


@pytest.mark.slow
def test_a_model_past_its_deadline_is_an_error_row_not_a_dead_run(ray_cluster, tmp_path):
    write_model(tmp_path / "big.safetensors", "benign", 0, (8192, 2048))  # a full scan: minutes
    write_model(tmp_path / "small.safetensors", "benign", 1, (64, 256))
    listing = tmp_path / "models.txt"
    listing.write_text("big.safetensors\nsmall.safetensors\n")
    out = tmp_path / "out"
    assert run(["scan-many", str(listing), "--out", str(out), "--ray", ray_cluster.address, "--timeout", "10"]) == 2
    rows = {row["source"].rsplit("/", 1)[-1]: row for row in ResultsTable(out).rows()}
    assert rows["big.safetensors"]["verdict"] == "error" and "timed out" in rows["big.safetensors"]["error"]
    assert rows["small.safetensors"]["verdict"] == "clean"


@pytest.mark.slow
def test_without_ray_option_a_local_instance_is_started_and_stopped(tmp_path):
    ray = pytest.importorskip("ray")
    (tmp_path / "tree").mkdir()
    write_model(tmp_path / "tree" / "benign.safetensors", "benign", 0, (64, 256))
    write_model(tmp_path / "tree" / "planted.safetensors", "nf4-planted", 1, (128, 256))
    try:
        assert run(["scan-many", str(tmp_path / "tree"), "--out", str(tmp_path / "out")]) == 1
        assert not ray.is_initialized()
    finally:
        ray.shutdown()
    rows = {row["source"].rsplit("/", 1)[-1]: row["verdict"] for row in ResultsTable(tmp_path / "out").rows()}
    assert rows == {"benign.safetensors": "clean", "planted.safetensors": "suspicious"}
