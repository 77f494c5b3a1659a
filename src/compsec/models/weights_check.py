"""Refuse a loaded model whose weights are not exactly the checkpoint's: the checks behind ``load_model``.

transformers fills every parameter the checkpoint lacks (or holds with another shape) with fresh random
values and only logs a report; a folder whose weights file holds none of the config's tensors then loads as
a random model that every verb would audit, prune or serve as if it were the real one. Here:

- :func:`require_checkpoint_match` raises InputError when transformers' own loading info (``from_pretrained(...,
  output_loading_info=True)``) lists missing, unexpected or shape-mismatched tensors. Tied weights (``lm_head``
  tied to ``embed_tokens``, legitimately absent from the file) are not missing in transformers' notion, and
  non-persistent buffers (rotary ``inv_freq``) are never in a checkpoint, so neither is reported.
- :func:`require_finite_weights` raises InputError when any parameter or buffer holds NaN/Inf, checking every
  element (the same count as ``compsec check``).
- :func:`checkpoint_findings` is the same comparison for ``compsec check``, on the meta device (no value read).
- :func:`offline_load_options` are the ``from_pretrained`` options every compsec load passes.
"""

from __future__ import annotations

from contextlib import contextmanager

from compsec.errors import InputError

SHOWN = 3  # tensor names quoted in a message; the rest are counted


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return f"{shown} and {len(names) - SHOWN} more" if len(names) > SHOWN else shown


def _mismatch(entry) -> str:
    name, in_file, in_model = entry
    return f"{name} ({list(in_file)} in the file, {list(in_model)} in the config)"


def checkpoint_problems(info: dict) -> list[str]:
    """One phrase per kind of problem in transformers' loading info (empty when the checkpoint matches)."""
    missing, unexpected = sorted(info.get("missing_keys") or ()), sorted(info.get("unexpected_keys") or ())
    mismatched = sorted(info.get("mismatched_keys") or (), key=lambda entry: entry[0])
    problems = []
    if missing:
        problems.append(f"{_count(len(missing), 'tensor')} of the config missing ({_names(missing)})")
    if unexpected:
        problems.append(f"{_count(len(unexpected), 'tensor')} not in the config ({_names(unexpected)})")
    if mismatched:
        shapes = _names([_mismatch(entry) for entry in mismatched])
        problems.append(f"{_count(len(mismatched), 'tensor')} of another shape ({shapes})")
    return problems + [" ".join(str(msg).split()) for msg in info.get("error_msgs") or ()]


def require_checkpoint_match(info: dict, where) -> None:
    """Raise InputError naming the tensors unless the weights hold exactly the config's tensors."""
    problems = checkpoint_problems(info)
    if problems:
        raise InputError(f"{where}: the weights are not the tensors its config describes: {'; '.join(problems)}; "
                         "refusing to load (transformers would give those parameters random values). Use the "
                         "config the weights were saved with, or re-export the model")


def nonfinite_tensors(model) -> dict[str, int]:
    """``{name: NaN/Inf count}`` over every parameter and buffer of ``model`` (every element; tied ones once)."""
    from compsec.integrity.safetensors_check import nonfinite_count

    counts = {}
    for name, tensor in (*model.named_parameters(), *model.named_buffers()):
        bad = nonfinite_count(tensor.detach())
        if bad:
            counts[name] = bad
    return counts


def require_finite_weights(model, where) -> None:
    """Raise InputError naming the tensors (and their NaN/Inf counts) unless every weight of ``model`` is finite."""
    counts = nonfinite_tensors(model)
    if counts:
        raise nonfinite_error(where, counts)


def nonfinite_error(where, counts: dict[str, int]) -> InputError:
    """The one-line refusal of ``where`` whose tensors hold ``{name: NaN/Inf count}`` (first few named)."""
    named = [f"{name}: {_count(count, 'value')}" for name, count in counts.items()]
    return InputError(f"{where}: NaN/Inf weights in {_count(len(counts), 'tensor')} ({_names(named)}); the weights "
                      "are corrupted or tampered: re-download or re-export the model, do not use it")


@contextmanager
def quiet_transformers():
    """Silence transformers' load report and progress bars: compsec reports loading problems itself."""
    from transformers.utils import logging

    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def offline_load_options() -> dict:
    """``from_pretrained`` options of every compsec load: local files only, no remote code, no Hub kernels.

    transformers 5.25 turned Hub kernels on by default (``use_kernels`` unset means on): after loading, its
    ``kernelize`` swaps layers (RMSNorm, activations, rotary embeddings on CUDA/ROCm/XPU) for kernels fetched
    from the Hub, some of them remote code, and refuses the meta device outright ("Unsupported device type
    'meta'"), which broke :func:`checkpoint_findings`. compsec audits the stock torch layers, offline, so it
    always asks for ``use_kernels=False``; transformers without Hub kernels (no ``set_use_kernels``) never
    used them and is not given the option."""
    from transformers import PreTrainedModel

    options = {"local_files_only": True, "trust_remote_code": False}
    if hasattr(PreTrainedModel, "set_use_kernels"):
        options["use_kernels"] = False
    return options


def checkpoint_findings(path) -> list:
    """An error :class:`~compsec.integrity.Finding` when the safetensors weights of model folder ``path`` are not
    the tensors its config.json describes, by transformers' own loading info computed on the meta device (names
    and shapes only: no tensor value is read). Empty for anything but a folder with config.json and safetensors;
    call it only on a folder whose files passed the integrity checks."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    from compsec.integrity.findings import Finding

    folder = Path(path)
    if not (folder.is_dir() and (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))):
        return []
    options = {"device_map": "meta", "output_loading_info": True, "ignore_mismatched_sizes": True,
               "use_safetensors": True, **offline_load_options()}
    try:
        with quiet_transformers():
            info = AutoModelForCausalLM.from_pretrained(str(folder), **options)[1]
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, ImportError) as err:
        message = f"could not compare the weights with config.json ({' '.join(str(err).split())[:200]})"
        return [Finding(str(folder), None, "config-unchecked", "warning", message)]
    problems = checkpoint_problems(info)
    return [Finding(str(folder), None, "config-mismatch", "error", f"the weights are not the tensors config.json "
                    f"describes: {'; '.join(problems)}; compsec refuses to load it")] if problems else []
