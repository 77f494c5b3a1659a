"""Load and save models — the one place every compsec feature gets weights from.

``load_model(path)`` accepts a Hugging Face folder with safetensors weights, a single ``.safetensors`` file
(with a sibling ``config.json`` or ``config_path=``), or a ``.gguf`` file (dequantized to fp32 by transformers;
needs ``gguf`` and ``accelerate``). Every file is validated by :mod:`compsec.integrity` before any library
opens it; remote code is never trusted. The loaded weights must be exactly the config's tensors and finite
(:mod:`compsec.models.weights_check`): transformers would otherwise fill gaps with random values. Pickle-based weights (``.bin .pt .pth .ckpt``) are refused unless
``allow_pickle=True``, which loads them with ``torch.load(weights_only=True)`` only, after an opcode scan.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from compsec.errors import InputError, MissingDependencyError
from compsec.integrity import ensure_safe
from compsec.integrity.check import PICKLE_SUFFIXES
from compsec.models.weights_check import (
    offline_load_options,
    quiet_transformers,
    require_checkpoint_match,
    require_finite_weights,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
METADATA_FILE = "compsec.json"
REFUSE_PICKLE = ("compsec never unpickles weights; convert them to safetensors first (from Python, "
                 "compsec.models.load_model(path, allow_pickle=True) reads plain tensor pickles safely)")


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__


def _from_pretrained(folder: Path, dtype, where: Path, **extra):
    """transformers' load of ``folder``, refused (InputError naming ``where``) unless the weights hold exactly
    the config's tensors: a missing or mismatched tensor would otherwise be filled with random values."""
    from transformers import AutoModelForCausalLM

    options = {**offline_load_options(), "output_loading_info": True, "ignore_mismatched_sizes": True,
               **extra}  # mismatches are reported below, naming the tensors
    if dtype is not None:
        options["dtype"] = dtype
    try:
        with quiet_transformers():
            model, info = AutoModelForCausalLM.from_pretrained(str(folder), **options)
    except ImportError as err:
        missing = "gguf" if "gguf" in str(err).lower() else "accelerate"
        raise MissingDependencyError(missing, purpose="loading this model") from err
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise InputError(f"{where}: transformers could not load the model ({_one_line(err)})") from err
    require_checkpoint_match(info, where)
    return model


def _tokenizer(folder: Path, **extra):
    if not extra and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False, **extra)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{folder}: a tokenizer is present but unreadable ({_one_line(err)})") from err


def _config_file(weights: Path, config_path: str | Path | None) -> Path:
    config = Path(config_path) if config_path else weights.parent / "config.json"
    config = config / "config.json" if config.is_dir() else config
    if not config.is_file():
        raise InputError(f"{weights.name} has no config; put its config.json next to it or pass config_path=")
    ensure_safe(config)
    return config


def _load_weights_file(weights: Path, config_path, dtype, where: Path | None = None):
    """A single weights file: link it with its config into a temp HF folder and load that."""
    config = _config_file(weights, config_path)
    with tempfile.TemporaryDirectory(prefix="compsec-load-") as tmp:
        (Path(tmp) / "config.json").symlink_to(config.resolve())
        (Path(tmp) / "model.safetensors").symlink_to(weights.resolve())
        model = _from_pretrained(Path(tmp), dtype, where or weights, use_safetensors=True)
    return model, _tokenizer(weights.parent)


def _pickle_to_safetensors(weights: Path, out_file: Path) -> None:
    """Opt-in path: ``torch.load(weights_only=True)`` (no arbitrary globals), then re-save as safetensors."""
    import pickle

    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as err:
        raise InputError(f"{weights.name}: refused by torch.load(weights_only=True) ({_one_line(err)})") from err
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{weights.name}: not a plain state dict of tensors; convert it to safetensors yourself")
    save_file({name: tensor.contiguous().clone() for name, tensor in state.items()}, str(out_file))


def _load_pickle(weights: Path, config_path, dtype):
    with tempfile.TemporaryDirectory(prefix="compsec-pickle-") as tmp:
        converted = Path(tmp) / f"{weights.stem}.safetensors"
        _pickle_to_safetensors(weights, converted)
        config = _config_file(weights, config_path)
        return _load_weights_file(converted, config, dtype, weights)[0], _tokenizer(weights.parent)


def _load_folder(folder: Path, config_path, dtype, allow_pickle: bool):
    from compsec.models.prequantized import load_options, require_runnable

    method = require_runnable(folder)  # a pre-quantized folder whose kernels cannot run here is refused, saying why
    if any(folder.glob("*.safetensors")):
        extra = load_options(folder, method)
        return _from_pretrained(folder, dtype, folder, use_safetensors=True, **extra), _tokenizer(folder)
    pickles = sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not pickles:
        raise InputError(f"{folder}: no model weights found; expected *.safetensors (or a .gguf file path)")
    if not allow_pickle:
        raise InputError(f"{folder} only has pickle weights ({pickles[0].name}): {REFUSE_PICKLE}")
    if len(pickles) > 1:
        raise InputError(f"{folder}: sharded pickle weights are not supported; convert them to safetensors")
    return _load_pickle(pickles[0], config_path, dtype)


def _load_gguf(path: Path, dtype):
    import torch

    from compsec.integrity.gguf_check import read_gguf_header

    model = _from_pretrained(path.parent, dtype or torch.float32, path, gguf_file=path.name)
    has_tokenizer = "tokenizer.ggml.model" in read_gguf_header(path).metadata
    return model, _tokenizer(path.parent, gguf_file=path.name) if has_tokenizer else None


def load_model(path, device: str = "cpu", dtype=None, allow_pickle: bool = False, config_path=None):
    """Load ``path`` (HF folder / .safetensors / .gguf; pickles only with ``allow_pickle``) after validating it.

    Returns ``(model, tokenizer_or_None)`` with the model in eval mode on ``device``. ``dtype`` (a
    ``torch.dtype``) overrides the checkpoint's; GGUF defaults to float32. Bad input raises InputError.
    Files are validated (headers) before any library opens them; the loaded weights must then be exactly the
    config's tensors (none missing, unexpected or of another shape; tied weights may be absent) and finite
    (every element checked), else InputError names the tensors.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_file() and path.suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise InputError(f"{path.name} is a pickle file: {REFUSE_PICKLE}")
    ensure_safe(path)
    if path.is_dir():
        model, tokenizer = _load_folder(path, config_path, dtype, allow_pickle)
    elif path.suffix == ".safetensors":
        model, tokenizer = _load_weights_file(path, config_path, dtype)
    elif path.suffix == ".gguf":
        model, tokenizer = _load_gguf(path, dtype)
    elif path.suffix in PICKLE_SUFFIXES:
        model, tokenizer = _load_pickle(path, config_path, dtype)
    else:
        raise InputError(f"{path.name}: unsupported weights file; use a HF folder, .safetensors or .gguf")
    require_finite_weights(model, path)
    return model.to(device).eval(), tokenizer


def _forget_gguf_quantizer(model) -> None:
    """A GGUF-loaded model is already dequantized; drop the quantizer so it saves as plain safetensors."""
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def save_model(model, tokenizer, out_dir, metadata: dict[str, str] | None = None) -> Path:
    """Save ``model`` as safetensors + config.json (+ tokenizer files) into ``out_dir``; return it.

    ``metadata`` (string → string, e.g. provenance) is written to ``compsec.json`` in the same folder.
    """
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise InputError("metadata must map strings to strings; convert values with str() first")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _forget_gguf_quantizer(model)
    model.save_pretrained(str(out_dir))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out_dir))
    if metadata is not None:
        (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True), encoding="utf-8")
    return out_dir
