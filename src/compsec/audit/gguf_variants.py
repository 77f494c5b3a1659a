"""GGUF variants run by llama.cpp: ``gguf:TYPE`` (llama.cpp quantizes the audited model) and ``gguf-file:PATH``.

- ``gguf:q4_k_m`` (any llama.cpp type name: ``q4_0``, ``q5_k_m``, ``q6_k``, ``q8_0``, ``f16``...): the original
  model is converted to an F32 GGUF and quantized by libllama's ``llama_model_quantize``, which picks each
  tensor's type itself; the file is cached by (model digest, type) (:mod:`compsec.models.gguf_quantize`).
- ``gguf-file:PATH``: a ``.gguf`` the user already has (e.g. downloaded), run as it is. Its vocabulary must be
  the audited model's (same size; the audit feeds the original tokenizer's ids).

Both yield a :class:`compsec.audit.llamacpp_backend.LlamaCppBackend`; records carry its label (``backend``).
Unlike the torch simulations (``q4_k``, ``q4_0``... in :mod:`compsec.formats`), llama.cpp computes with its
own kernels (activations rounded to Q8 blocks for quantized matrix products), as deployed.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from compsec.errors import InputError

TYPE_PREFIX, FILE_PREFIX = "gguf:", "gguf-file:"


@dataclass(frozen=True)
class GgufVariant:
    """A GGUF run by llama.cpp: the user's ``file``, or the audited model quantized by llama.cpp to ``type_name``."""

    name: str
    type_name: str = ""
    file: Path | None = None

    def path(self, context) -> Path:
        """The file llama.cpp runs (for ``gguf:TYPE``: converted + quantized on first use, then cached)."""
        if self.file is not None:
            return self.file
        from compsec.models.gguf_quantize import quantized_gguf

        return quantized_gguf(context.model, context.tokenizer, self.type_name)

    @contextmanager
    def open(self, context):
        from compsec.audit.llamacpp_backend import LlamaCppBackend

        backend = LlamaCppBackend(self.path(context), context.tokenizer, context.config.max_new_tokens)
        try:
            yield backend
        finally:
            backend.close()


def gguf_variant(spec: str):
    """The GGUF variant ``spec`` names, None when it names none; InputError for a bad type or missing file."""
    lowered = spec.lower()
    if lowered.startswith(FILE_PREFIX):
        path = Path(spec[len(FILE_PREFIX):]).expanduser()
        if path.suffix.lower() != ".gguf" or not path.is_file():
            raise InputError(f"{spec}: no .gguf file at {path}; give gguf-file:PATH/TO/MODEL.gguf")
        return GgufVariant(spec, file=path)
    if lowered.startswith(TYPE_PREFIX):
        from compsec.models.gguf_quantize import llama_type

        type_name = llama_type(spec[len(TYPE_PREFIX):])
        return GgufVariant(TYPE_PREFIX + type_name, type_name)
    return None
