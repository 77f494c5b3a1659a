"""List what a pickle-based weight file would import, WITHOUT unpickling it.

``torch.save`` files are zip archives holding ``<name>/data.pkl`` (or, legacy, a few raw pickles in a row).
Unpickling runs arbitrary code, so we only walk the opcodes with :func:`pickletools.genops` and collect the
globals named by ``GLOBAL`` / ``INST`` / ``STACK_GLOBAL``. Zip members are checked by their declared sizes and
compression ratios before anything is decompressed, and reads are capped, so a zip bomb costs nothing.
"""

from __future__ import annotations

import io
import pickletools
import re
from pathlib import Path

from compsec.errors import InputError
from compsec.integrity.findings import Finding
from compsec.integrity.pickle_archives import MAX_DEPTH, MAX_RATIO, pickles_in  # noqa: F401  (MAX_RATIO re-exported)

MAX_OPCODES = 5_000_000
DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "socket", "shutil", "runpy", "importlib", "pty", "commands",
    "webbrowser", "ctypes", "code", "codeop", "marshal", "pickle", "_pickle", "dill", "requests", "urllib",
    "http", "httplib", "ftplib", "telnetlib", "multiprocessing", "signal", "tempfile", "pathlib", "io", "bdb",
    "pdb", "timeit", "asyncio", "platform", "operator", "functools", "pydoc", "_posixsubprocess", "_operator",
}
DANGEROUS_PREFIXES = ("numpy.testing", "numpy.f2py", "numpy.distutils")  # runstring execs its argument
DANGEROUS_BUILTINS = {
    "eval", "exec", "execfile", "compile", "open", "__import__", "getattr", "setattr", "delattr", "apply",
    "globals", "locals", "vars", "input", "breakpoint", "memoryview", "type", "object",
}
SAFE_GLOBALS = re.compile(
    r"torch\._utils\._rebuild_\w+|torch\._tensor\._rebuild_\w+|torch\.\w*Storage|torch\.Size|torch\.device"
    r"|torch\.(?:b?float|u?int|bool|complex|half|double|long|short)\w*|collections\.OrderedDict|_codecs\.encode"
    r"|numpy\.core\.multiarray\._reconstruct|numpy\._core\.multiarray\._reconstruct|numpy\.(?:ndarray|dtype)"
    r"|(?:builtins|__builtin__)\.(?:set|frozenset|slice|complex|bytearray)"
)
STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}


def _globals_in_pickle(data: bytes, name: str) -> tuple[list[str], int]:
    """Return (imported 'module.name' strings, bytes consumed) for the first pickle in ``data``."""
    found, strings, memo, end = [], [], {}, 0
    for count, (opcode, arg, pos) in enumerate(pickletools.genops(io.BytesIO(data))):
        if count >= MAX_OPCODES:
            raise InputError(f"{name}: pickle has over {MAX_OPCODES} opcodes; refusing to scan further")
        op = opcode.name
        if op in STRING_OPS:
            strings.append(arg if isinstance(arg, str) else str(arg))
        elif op in ("BINPUT", "LONG_BINPUT", "PUT") and strings:
            memo[arg] = strings[-1]
        elif op == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op in ("GLOBAL", "INST"):
            found.append(str(arg).replace(" ", "."))
        elif op == "STACK_GLOBAL":
            found.append(".".join(strings[-2:]) if len(strings) >= 2 else "<unresolved STACK_GLOBAL>")
        end = pos
    return found, end + 1


def _globals_in_stream(data: bytes, name: str) -> list[str]:
    """Globals of consecutive raw pickles (legacy torch.save writes several, then raw storage bytes)."""
    imports, offset, first = [], 0, True
    while offset < len(data):
        try:
            found, used = _globals_in_pickle(data[offset:], name)
        except (ValueError, EOFError, UnicodeDecodeError) as err:
            if first:
                raise InputError(f"{name}: not a readable pickle ({err}); re-export the weights as safetensors")
            break  # past the pickles: raw tensor bytes of the legacy format
        imports += found
        offset, first = offset + used, False
    return imports


def pickle_imports(path: str | Path) -> list[str]:
    """Every 'module.name' global the pickle(s) at ``path`` would import, in order (never unpickled): raw
    pickles, zip / tar archives at any nesting up to :data:`MAX_DEPTH`, object-dtype ``.npy`` files."""
    path = Path(path)
    found = []
    for label, blob, strict in pickles_in(path, path.name):
        try:
            found += _globals_in_stream(blob, label)
        except InputError:
            if strict:
                raise
    return found


def is_dangerous(global_name: str) -> bool:
    """True for imports that let a pickle run code: os.system, subprocess.*, builtins.eval/exec, ..."""
    module, _, attr = global_name.rpartition(".")
    if module.split(".")[0] in DANGEROUS_MODULES or module.startswith(DANGEROUS_PREFIXES):
        return True
    return module in ("builtins", "__builtin__") and attr in DANGEROUS_BUILTINS


def pickle_findings(path: str | Path) -> list[Finding]:
    """An error finding per dangerous import, a warning per unknown one; always a warning that it's a pickle."""
    imports = pickle_imports(path)
    if not imports and Path(path).suffix in (".npy", ".npz"):
        return []  # numeric arrays: no pickle inside
    findings = [Finding(str(path), None, "pickle-file", "warning",
                        "pickle-based weights; compsec never unpickles weights, convert to safetensors")]
    for name in dict.fromkeys(imports):
        if is_dangerous(name):
            message = f"pickle imports {name}: it would run code when loaded; do not load this file"
            findings.append(Finding(str(path), name, "dangerous-import", "error", message))
        elif not SAFE_GLOBALS.fullmatch(name):
            message = f"pickle imports unexpected global {name}; inspect the file before trusting it"
            findings.append(Finding(str(path), name, "unknown-import", "warning", message))
    return findings
