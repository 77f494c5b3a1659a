"""The output policy (compsec.outputs), the path policy (compsec.integrity.path_policy), the JSON readers
(compsec.jsonfiles) and the device check: unit and property tests, then --force end to end on a real verb."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compsec.cli.main import run
from compsec.cli.preflight import device
from compsec.errors import InputError
from compsec.integrity.path_policy import checked_input
from compsec.jsonfiles import parse_json, parse_json_objects, read_json_file
from compsec.outputs import check_output_file, check_output_folder, staged_folder, write_report

NAMES = st.sampled_from(["events.jsonl", "attack.json", "model.safetensors", "notes.txt", ".hidden", "stages"])


@settings(max_examples=60, deadline=None)
@given(st.sets(NAMES, max_size=4), st.sets(NAMES, max_size=2), st.booleans())
def test_a_folder_is_refused_exactly_when_it_holds_foreign_files_without_force(present, own, force):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "out"
        folder.mkdir()
        for name in present:
            (folder / name).write_text("x")
        refused = bool(present) and not force and not (present & own)
        try:
            check_output_folder(folder, force=force, own=tuple(own))
        except InputError as err:
            assert refused and "--force" in str(err)
        else:
            assert not refused


def test_output_paths_of_the_wrong_kind_are_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "below")
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "r.json")
    with pytest.raises(InputError, match="empty path"):
        check_output_folder("")
    assert check_output_file(tmp_path / "file") == tmp_path / "file"  # reports may be overwritten
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file(tmp_path / "new" / "r.json") == tmp_path / "new" / "r.json"  # created on write


def test_staged_folder_replaces_the_target_only_when_complete(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.safetensors").write_text("old")
    with pytest.raises(RuntimeError), staged_folder(target) as staging:
        (staging / "half.safetensors").write_text("half")
        raise RuntimeError("killed mid-write")
    assert [p.name for p in target.iterdir()] == ["stale.safetensors"]  # untouched
    with staged_folder(target) as staging:
        (staging / "model.safetensors").write_text("new")
    assert [p.name for p in target.iterdir()] == ["model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left behind


def test_write_report_creates_missing_folders_and_replaces_whole(tmp_path):
    report = write_report(tmp_path / "reports" / "ci" / "r.json", "first")
    assert report.read_text() == "first"
    write_report(report, "second")
    assert report.read_text() == "second" and [p.name for p in report.parent.iterdir()] == ["r.json"]


def test_path_policy_refuses_missing_empty_and_escaping_links(tmp_path):
    for bad, message in (("", "empty path"), (tmp_path / "nope", "no such")):
        with pytest.raises(InputError, match=message):
            checked_input(bad)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "inside.json").write_text("{}")
    (folder / "ok.json").symlink_to(folder / "inside.json")
    assert checked_input(folder) == folder
    (folder / "model.safetensors").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match="outside the model folder"):
        checked_input(folder)


@pytest.mark.parametrize("verb", [["diff", "{tiny}", "{folder}"], ["provenance", "show", "{folder}"],
                                  ["provenance", "verify", "{folder}", "--source", "{tiny}"],
                                  ["check", "{folder}"], ["scan", "{folder}", "--no-progress"]])
def test_every_verb_refuses_a_folder_whose_weights_link_outside(verb, tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    (folder / "model.safetensors").symlink_to(tiny_model_dir / "model.safetensors")  # valid, but outside
    argv = [part.format(tiny=tiny_model_dir, folder=folder) for part in verb]
    assert run(argv) == 2
    assert "outside the model folder" in capsys.readouterr().err


def test_json_readers_name_the_file_and_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(InputError, match="deep.json: JSON nested too deeply"):
        read_json_file(deep)
    with pytest.raises(InputError, match=r"rows.jsonl:2: not a JSON object"):
        parse_json_objects('{"a": 1}\n[1]\n', "rows.jsonl")
    with pytest.raises(InputError, match="x.json: not valid JSON"):
        parse_json("{", "x.json")
    (tmp_path / "latin.json").write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(InputError, match="not UTF-8"):
        read_json_file(tmp_path / "latin.json")
    assert read_json_file(_write(tmp_path / "ok.json", {"a": [1]})) == {"a": [1]}


def test_device_names_are_checked_against_this_machine():
    assert device("cpu") == "cpu"
    for bad in ("bogus", "cuda:999", "meta", ""):
        with pytest.raises(InputError, match="--device"):
            device(bad)


def test_force_replaces_a_model_folder_without_leaving_stale_weights(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "pruned"
    out.mkdir()
    (out / "stale-shard.safetensors").write_bytes((tiny_model_dir / "model.safetensors").read_bytes())
    argv = ["prune", str(tiny_model_dir), "--sparsity", "0.3", "--out", str(out)]
    assert run(argv) == 2 and "--force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["stale-shard.safetensors"]
    assert run([*argv, "--force"]) == 0
    assert "stale-shard.safetensors" not in {p.name for p in out.iterdir()}
    assert run(["check", str(out)]) == 0
    assert run(["provenance", "verify", str(out), "--source", str(tiny_model_dir)]) == 0


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path
