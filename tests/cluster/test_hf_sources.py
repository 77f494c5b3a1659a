"""``hf://`` entries of scan-many: routed to huggingface_hub's fsspec filesystem, and offline a clear error row
(never a dead run, never a fetch: the hub is put in offline mode). Unknown protocols and missing backends too."""

from __future__ import annotations

import time

import pytest

from compsec.cluster.config import ScanManyConfig
from compsec.cluster.sources import open_remote, read_sources
from compsec.cluster.task import scan_one
from compsec.errors import InputError

URL = "hf://example-org/example-model/model.safetensors"


@pytest.fixture
def hub_offline(monkeypatch):
    """huggingface_hub in offline mode (HF_HUB_OFFLINE=1, read at request time): any request raises at once."""
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def test_hf_urls_go_to_huggingface_hubs_filesystem(tmp_path):
    from huggingface_hub import HfFileSystem

    listing = tmp_path / "models.txt"
    listing.write_text(f"{URL}\nlocal.safetensors\n")
    assert read_sources(listing) == [URL, str(tmp_path / "local.safetensors")]  # kept as a URL, not a path
    fs, path = open_remote(URL)
    assert isinstance(fs, HfFileSystem) and path == "example-org/example-model/model.safetensors"


@pytest.mark.parametrize("sample", [0, 512])
def test_offline_hf_source_is_one_clear_error_row(hub_offline, sample):
    started = time.monotonic()
    row = scan_one(URL, ScanManyConfig(sample=sample, seed=1, read_retries=3))
    assert time.monotonic() - started < 30  # offline mode is not retried
    assert row["verdict"] == "error" and row["digest"] == "" and row["bytes_read"] == 0
    assert row["error"].startswith(f"{URL}: could not read from the Hugging Face Hub")
    assert "OfflineModeIsEnabled" in row["error"] and "download the file" in row["error"]


def test_unknown_protocol_and_missing_backend_are_error_rows_naming_the_fix():
    row = scan_one("nosuchproto://bucket/model.safetensors", ScanManyConfig())
    assert row["verdict"] == "error" and "entries are local paths or fsspec URLs" in row["error"]
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="needs gcsfs"):
            open_remote("gs://bucket/model.safetensors")
