"""Build-once cache folders: built once, rebuilt on a new recipe, tampering detected, nothing left over."""

import pytest

from compsec.errors import InputError
from compsec.tiny.cache import cached_build, read_meta, verify_folder


def _builder(calls, payload=b"weights"):
    def build(folder):
        calls.append(folder)
        (folder / "model.bin").write_bytes(payload)
        return {"size": len(payload)}

    return build


def test_builds_once_then_reuses(tmp_path):
    calls = []
    first = cached_build(tmp_path / "thing-v1", "recipe-a", _builder(calls))
    second = cached_build(tmp_path / "thing-v1", "recipe-a", _builder(calls))
    assert first == second and len(calls) == 1
    assert read_meta(first)["stats"] == {"size": 7}
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["thing-v1"]


def test_a_changed_recipe_rebuilds_in_place(tmp_path):
    calls = []
    cached_build(tmp_path / "thing-v1", "recipe-a", _builder(calls, b"old"))
    folder = cached_build(tmp_path / "thing-v1", "recipe-b", _builder(calls, b"new!"))
    assert len(calls) == 2 and (folder / "model.bin").read_bytes() == b"new!"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["thing-v1"]


def test_a_modified_file_is_reported_on_load(tmp_path):
    folder = cached_build(tmp_path / "thing-v1", "recipe-a", _builder([]))
    (folder / "model.bin").write_bytes(b"weightz")
    with pytest.raises(InputError, match="model.bin does not match"):
        verify_folder(folder)
    with pytest.raises(InputError, match="delete"):
        cached_build(tmp_path / "thing-v1", "recipe-a", _builder([]))


def test_a_killed_builder_s_staging_folder_is_cleaned_by_the_next_build(tmp_path):
    (tmp_path / ".thing-v1.staging-abandoned").mkdir()
    (tmp_path / ".thing-v1.staging-abandoned" / "half.bin").write_bytes(b"x")
    (tmp_path / ".thing-v1-int8.staging-busy").mkdir()  # another entry's builder: not ours to delete
    cached_build(tmp_path / "thing-v1", "recipe-a", _builder([]))
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert names == [".thing-v1-int8.staging-busy", "thing-v1"]


def test_a_failed_build_leaves_nothing(tmp_path):
    def broken(folder):
        (folder / "half.bin").write_bytes(b"x")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cached_build(tmp_path / "thing-v1", "recipe-a", broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
