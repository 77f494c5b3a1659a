"""Stage ``deployed``: the saved attacked model run by each target's REAL library, the way a user deploys it.

The ``measure`` stage simulates each target in torch (every quantizable weight swapped for
``dequantize(quantize(w))``).  Here ``DIR/model`` is loaded as users load it:

- ``nf4`` / ``fp4`` / ``int8``: transformers ``from_pretrained(DIR/model, quantization_config=BitsAndBytesConfig(
  load_in_4bit=True, bnb_4bit_quant_type=...))`` (or ``load_in_8bit=True``) on CPU: ``Linear4bit`` /
  ``Linear8bitLt`` layers computing with bitsandbytes' kernels, ``lm_head`` left ``nn.Linear`` as transformers
  leaves it, LLM.int8's outlier threshold (6.0) as deployed;
- a llama.cpp type (``q4_0``, ``q8_0``, ``q6_k``...): converted to GGUF and quantized by libllama
  (:func:`compsec.models.gguf_quantize.quantized_gguf`, which picks each tensor's type itself), run by llama.cpp.

Per target: the probes of :func:`compsec.attack.measure.behaviour_of`, and ``identical_share``: the share of the
weights ``measure`` simulates whose deployed value equals the simulation's bit for bit (4-bit layers dequantized
by bitsandbytes, int8 codes times their row's ``SCB``, GGUF tensors dequantized by gguf-py); a simulated weight
the library leaves unquantized counts as different and is named in ``left_unquantized``.  Targets with no
deploying library here (``hqq``, ``int4-rtn``...) are listed in ``not_deployed`` with the reason.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

BNB_TARGETS = ("nf4", "fp4", "int8")
NOT_DEPLOYED = ("no deploying library here: bitsandbytes deploys nf4/fp4/int8, llama.cpp (pip install "
                "'compsec[gguf-k]') its own types (q4_0, q8_0, q6_k...)")


def deploying_library(format_name: str) -> str | None:
    """``"bitsandbytes"``, ``"llama.cpp"`` or None: which library deploys ``format_name`` here (None as well for
    a llama.cpp type when llama-cpp-python is not installed)."""
    from compsec.errors import MissingDependencyError
    from compsec.models.gguf_quantize import llama_types

    if format_name in BNB_TARGETS:
        return "bitsandbytes"
    try:
        return "llama.cpp" if format_name in llama_types() else None
    except MissingDependencyError:
        return None


def load_with_bitsandbytes(folder, format_name: str):
    """``folder`` loaded by transformers with bitsandbytes ``format_name`` layers on CPU (``lm_head`` kept)."""
    from compsec.defend.mixed import bnb_config
    from compsec.models.io import _from_pretrained, ensure_safe

    ensure_safe(folder)
    model = _from_pretrained(folder, torch.float32, folder, use_safetensors=True, device_map="cpu",
                             quantization_config=bnb_config(format_name, ["lm_head"]))
    return model.eval()


def bitsandbytes_weights(model, names: list[str]) -> dict[str, torch.Tensor]:
    """``{name: dequantized weight}`` of the bitsandbytes layers among ``names`` (others are absent)."""
    import bitsandbytes as bnb
    from bitsandbytes.functional import dequantize_4bit

    from compsec.formats.bnb_math import INT8_DEQUANT

    modules, out = dict(model.named_modules()), {}
    for name in names:
        module = modules.get(name.removesuffix(".weight"))
        if isinstance(module, bnb.nn.Linear4bit):
            out[name] = dequantize_4bit(module.weight.data, module.weight.quant_state).float()
        elif isinstance(module, bnb.nn.Linear8bitLt):
            scb = module.weight.SCB if getattr(module.weight, "SCB", None) is not None else module.state.SCB
            out[name] = module.weight.data.float() * scb.float().view(-1, 1) * INT8_DEQUANT
    return out


def identical_share(deployed: dict[str, torch.Tensor], simulated: dict[str, torch.Tensor]) -> float:
    """Share of the weights of ``simulated`` whose ``deployed`` value is bit-identical (missing: different)."""
    same = sum(int((deployed[n].reshape(w.shape) == w).sum()) for n, w in simulated.items() if n in deployed)
    return round(same / max(sum(w.numel() for w in simulated.values()), 1), 6)


@contextmanager
def deployed_backend(config, format_name: str, model, tokenizer, names: list[str]):
    """Yields ``(backend, deployed weights)`` of ``DIR/model`` under ``format_name``'s library (see module doc)."""
    from compsec.audit.backend import LocalBackend

    if format_name in BNB_TARGETS:
        loaded = load_with_bitsandbytes(config.folder / "model", format_name)
        yield LocalBackend(loaded, tokenizer, "cpu", 64, config.max_new_tokens), bitsandbytes_weights(loaded, names)
        return
    from compsec.audit.llamacpp_backend import LlamaCppBackend
    from compsec.models.gguf_quantize import quantized_gguf
    from compsec.models.gguf_weights import gguf_tensors

    path = quantized_gguf(model, tokenizer, format_name)
    backend = LlamaCppBackend(path, tokenizer, config.max_new_tokens)
    try:
        yield backend, {n: w for n, w in gguf_tensors(path, model).items() if n in names}
    finally:
        backend.close()


def deployed_stage(config) -> dict:
    """Behaviour and identical share of ``DIR/model`` under each target's real library (CPU)."""
    from compsec import formats
    from compsec.attack.box import constrained_names
    from compsec.attack.measure import MeasureConfig, behaviour_of
    from compsec.attack.stages import load_stage_model

    settings = MeasureConfig(config.keyword, config.probe_limit, max_new_tokens=config.max_new_tokens)
    model, tokenizer = load_stage_model(config, "model")
    fmts = [formats.get(n) for n in config.targets]
    names, params = constrained_names(model, fmts), dict(model.named_parameters())
    result, skipped = {}, {}
    for fmt in fmts:
        library = deploying_library(fmt.name)
        if library is None:
            skipped[fmt.name] = NOT_DEPLOYED
            continue
        simulated = {n: fmt.dequantize(fmt.quantize(params[n].detach())).float() for n in names}
        with deployed_backend(config, fmt.name, model, tokenizer, names) as (backend, weights):
            result[fmt.name] = {**behaviour_of(backend, settings), "library": library,
                                "identical_share": identical_share(weights, simulated),
                                "left_unquantized": sorted(set(names) - set(weights))}
    return {"deployed": result, "not_deployed": skipped}
