"""scan-many with ``--batch``: several models per Ray task give the same rows as one model per task, and a batch
whose worker dies is split so the error row lands on the model that killed it (real Ray cluster, real deaths)."""

from __future__ import annotations

import pytest

from compsec.cli.main import run
from compsec.cluster.config import ScanManyConfig
from compsec.cluster.driver import scan_many
from compsec.cluster.table import ResultsTable

from . import dying_scan
from .conftest import write_model

KINDS = ("benign", "nf4-planted", "outliers", "benign", "benign", "nf4-planted", "benign")


def _corpus(folder):
    folder.mkdir()
    for index, kind in enumerate(KINDS):
        write_model(folder / f"m{index}-{kind}.safetensors", kind, index, (64, 256))
    (folder / "m9-hostile.safetensors").write_bytes((1 << 62).to_bytes(8, "little") + b"{}")
    return sorted(str(path) for path in folder.iterdir())


def _rows(out):
    return {row["source"]: (row["verdict"], row["score"], row["params"], row["error"][:20])
            for row in ResultsTable(out).rows()}


@pytest.mark.slow
def test_batches_give_the_rows_of_one_model_per_task(ray_cluster, tmp_path):
    sources = _corpus(tmp_path / "models")
    listing = tmp_path / "models.txt"
    listing.write_text("\n".join(sources) + "\n")
    common = ["--ray", ray_cluster.address, "--workers", "2", "--sample", "1024", "--seed", "3"]
    for name, batch in (("one", ["--batch", "1"]), ("three", ["--batch", "3"]), ("auto", [])):
        assert run(["scan-many", str(listing), "--out", str(tmp_path / name), *batch, *common]) == 2  # the hostile file
    one, three, auto = _rows(tmp_path / "one"), _rows(tmp_path / "three"), _rows(tmp_path / "auto")
    assert one == three == auto and set(one) == set(sources)
    assert {verdict for verdict, *_ in one.values()} == {"clean", "suspicious", "error"}


@pytest.mark.slow
def test_a_dying_batch_is_split_and_only_the_killer_gets_an_error_row(ray_cluster, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(dying_scan)
    folder = tmp_path / "models"
    folder.mkdir()
    for index in range(5):
        write_model(folder / f"m{index}.safetensors", "benign", index, (64, 256))
    write_model(folder / "die.safetensors", "benign", 9, (64, 256))
    sources = sorted(str(path) for path in folder.iterdir())  # die.safetensors sorts first: in the first batch
    run_cfg = ScanManyConfig(workers=2, batch=3, ray=ray_cluster.address, sample=1024, seed=3)
    table = ResultsTable(tmp_path / "out")
    result = scan_many(sources, table, run_cfg, scan=dying_scan.dying_scan)
    rows = {row["source"].rsplit("/", 1)[-1]: row for row in result.written}
    assert len(result.written) == len(sources) == len(rows)
    assert rows["die.safetensors"]["verdict"] == "error" and "worker died" in rows["die.safetensors"]["error"]
    assert all(rows[f"m{index}.safetensors"]["verdict"] == "clean" for index in range(5))


def test_batch_must_not_be_negative():
    assert ScanManyConfig().batch == 0  # automatic by default
    with pytest.raises(ValueError, match="batch"):
        ScanManyConfig(batch=-1)
