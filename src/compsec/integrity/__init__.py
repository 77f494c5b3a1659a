"""Safe parsing of untrusted model files BEFORE any library touches them.

``check_file(path) -> list[Finding]`` validates safetensors headers (and NaN/Inf values), GGUF headers and
their chat templates, pickle files (opcode scan, never unpickled), configs and symlinks. Files too malformed to
parse raise :class:`compsec.errors.InputError`.
"""

from compsec.integrity.check import check_file, check_folder, ensure_safe
from compsec.integrity.findings import Finding

__all__ = ["Finding", "check_file", "check_folder", "ensure_safe"]
