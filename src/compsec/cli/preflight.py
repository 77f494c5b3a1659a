"""Checks every verb runs on its options before any model is loaded or anything is written.

A bad ``--device``, an output that cannot be written, a model path that breaks the path policy or holds a
malformed file: each is an :class:`InputError` (exit 2, one line) in the first second of the run, not after
the model has loaded and run for hours. Counts and ranges are typer ``min=``/``max=`` constraints on the
options themselves (a usage error, also exit 2 with one line).
"""

from __future__ import annotations

from compsec.errors import InputError
from compsec.outputs import check_output_file, check_output_folder

__all__ = ["check_output_file", "check_output_folder", "device", "model_input", "report_files"]

DEVICE_TYPES = ("cpu", "cuda", "mps")


def device(name: str) -> str:
    """``name`` if torch parses it as a device this machine has (cpu, cuda[:N], mps); InputError otherwise."""
    import torch

    try:
        parsed = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise InputError(f"--device {name!r}: not a torch device; use cpu, cuda, cuda:0 or mps") from None
    if parsed.type not in DEVICE_TYPES:
        raise InputError(f"--device {name!r}: compsec runs on {', '.join(DEVICE_TYPES)}; use one of them")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                         "use cuda:0 ... or cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return name


def model_input(path: str, what: str = "model", tokenizer: bool = False) -> str:
    """``path`` after the path policy and the header checks the loader would run (no weights are read);
    ``tokenizer``: the verb generates text, so tokenizer files must be there too (a GGUF carries its own)."""
    from compsec.integrity import ensure_safe
    from compsec.integrity.path_policy import checked_input
    from compsec.models.io import TOKENIZER_FILES

    checked = checked_input(path, f"{what} file or folder")
    ensure_safe(checked)
    _has_weights(checked)
    folder = checked if checked.is_dir() else checked.parent
    if tokenizer and checked.suffix != ".gguf" and not any((folder / n).is_file() for n in TOKENIZER_FILES):
        raise InputError(f"{path}: no tokenizer files ({', '.join(TOKENIZER_FILES[:2])}...); this verb "
                         "generates text, so save the tokenizer next to the weights")
    return path


def report_files(**paths: str | None) -> None:
    """:func:`check_output_file` on every given report path (keyword = option name, e.g. ``json=...``)."""
    for option, path in paths.items():
        if path and path != "-":
            check_output_file(path, "--" + option.replace("_", "-"))


def _has_weights(path) -> None:
    """The loader's own refusals, early: pickles, unsupported files, folders without safetensors weights."""
    from compsec.integrity.check import PICKLE_SUFFIXES
    from compsec.models.io import REFUSE_PICKLE

    if path.is_file() and path.suffix in PICKLE_SUFFIXES:
        raise InputError(f"{path.name} is a pickle file: {REFUSE_PICKLE}")
    if path.is_file() and path.suffix not in (".safetensors", ".gguf"):
        raise InputError(f"{path.name}: unsupported weights file; use a HF folder, .safetensors or .gguf")
    if path.is_dir() and not any(path.glob("*.safetensors")):
        pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise InputError(f"{path} only has pickle weights ({pickles[0]}): {REFUSE_PICKLE}")
        raise InputError(f"{path}: no model weights found; expected *.safetensors (or a .gguf file path)")
