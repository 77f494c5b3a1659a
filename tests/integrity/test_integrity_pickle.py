"""Pickle files are scanned opcode by opcode and never unpickled; zip bombs and escaping symlinks refused."""

import io
import os
import pickle
import tracemalloc
import zipfile

import pytest
import torch

from compsec.errors import InputError
from compsec.integrity import check_file
from compsec.integrity.pickle_scan import MAX_RATIO, is_dangerous, pickle_imports


class MarkerPayload:
    """Unpickling this would run ``os.system('touch <marker>')``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class EvalPayload:
    def __reduce__(self):
        return (eval, ("1+1",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_raw_pickle_payload_is_reported_and_never_runs(protocol, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"weight": MarkerPayload(marker)}, protocol=protocol))
    findings = check_file(path)
    dangerous = [f for f in findings if f.kind == "dangerous-import"]
    assert [f.tensor for f in dangerous] in (["posix.system"], ["nt.system"], ["os.system"])
    assert dangerous[0].severity == "error" and "\n" not in dangerous[0].message
    assert not marker.exists()


def test_zip_torch_file_payload_in_data_pkl_is_reported(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": MarkerPayload(marker), "e": EvalPayload()}))
        archive.writestr("archive/version", "3\n")
    assert {f.tensor for f in check_file(path) if f.severity == "error"} >= {"builtins.eval"}
    assert not marker.exists()


def test_real_torch_save_files_only_import_safe_globals(tmp_path):
    state = {"w": torch.randn(3, 2), "b": torch.zeros(2, dtype=torch.bfloat16)}
    for name, new_format in (("new.pt", True), ("legacy.pt", False)):
        torch.save(state, tmp_path / name, _use_new_zipfile_serialization=new_format)
        imports = pickle_imports(tmp_path / name)
        assert "torch._utils._rebuild_tensor_v2" in imports
        assert [f.kind for f in check_file(tmp_path / name)] == ["pickle-file"]


def test_zip_bomb_is_refused_without_decompressing(tmp_path):
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", bytes(16 * 1024 * 1024))
    info = zipfile.ZipFile(path).infolist()[0]
    assert info.file_size > MAX_RATIO * info.compress_size
    tracemalloc.start()
    with pytest.raises(InputError, match="zip bomb"):
        check_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 << 20, f"the bomb made the check allocate {peak} bytes"  # nothing decoded or inflated


def test_garbage_pickle_and_damaged_zip_raise_input_error(tmp_path):
    (tmp_path / "junk.bin").write_bytes(b"\x80\x04\x95garbage-not-a-pickle")
    with pytest.raises(InputError, match="not a readable pickle"):
        check_file(tmp_path / "junk.bin")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/data.pkl", pickle.dumps({"x": 1}))
    (tmp_path / "cut.pt").write_bytes(buffer.getvalue()[:-30])
    with pytest.raises(InputError):
        check_file(tmp_path / "cut.pt")


@pytest.mark.parametrize("name, expected", [
    ("os.system", True), ("posix.system", True), ("subprocess.Popen", True), ("builtins.exec", True),
    ("__builtin__.eval", True), ("builtins.getattr", True), ("runpy._run_code", True),
    ("torch._utils._rebuild_tensor_v2", False), ("collections.OrderedDict", False), ("builtins.set", False),
])
def test_danger_classification(name, expected):
    assert is_dangerous(name) is expected


def test_symlink_escaping_the_model_folder_is_an_error(tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not a model")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "inside.json").write_text("{}")
    (folder / "model.safetensors").symlink_to(outside)
    (folder / "ok_link.json").symlink_to(folder / "inside.json")
    findings = check_file(folder)
    assert [(os.path.basename(f.path), f.kind, f.severity) for f in findings] == [
        ("model.safetensors", "symlink-escape", "error")]
