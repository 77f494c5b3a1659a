"""What an audit compares against the original: a small registry of variant factories.

A variant spec (one item of ``--variants``) is resolved by the first factory that accepts it:

- ``original``                 the model as loaded;
- ``http://...`` / ``https://``  an OpenAI-compatible chat endpoint (:mod:`compsec.audit.endpoint`);
- ``gguf:TYPE`` / ``gguf-file:PATH``  a GGUF run by llama.cpp (:mod:`compsec.audit.gguf_variants`);
- a path to a model folder     another model, loaded for its turn and freed after;
- a registered format name     (``nf4``, ``int8``, ``q4_0``...) every quantizable weight of the *one* loaded
                               model is replaced in place by ``dequantize(quantize(w))``; the original
                               weights are kept once on the side (CPU) and restored when the variant ends.

Later variants (pruning, noise) register a factory ``spec -> Variant | None`` with :func:`register_variant`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from compsec.errors import InputError

ORIGINAL = "original"


class Variant(Protocol):
    """A named way to get a backend; ``open(context)`` is a context manager yielding it."""

    name: str

    def open(self, context) -> Iterator: ...


@dataclass(frozen=True)
class OriginalVariant:
    name: str = ORIGINAL

    @contextmanager
    def open(self, context):
        yield context.local_backend()


@dataclass(frozen=True)
class FormatVariant:
    """The original model with its quantizable weights round-tripped through ``format_name``."""

    name: str

    @contextmanager
    def open(self, context):
        from compsec import formats

        fmt = formats.get(self.name)
        params = dict(context.model.named_parameters())
        try:
            with torch.no_grad():
                for name, original in context.original_weights().items():
                    if fmt.supports(tuple(original.shape)):
                        target = params[name]
                        rounded = fmt.dequantize(fmt.quantize(original.to(target.device)))
                        target.copy_(rounded.to(target.dtype))
            yield context.local_backend()
        finally:
            context.restore_weights()


@dataclass(frozen=True)
class FolderVariant:
    """Another model folder (same tokenizer expected for KL), loaded for this variant only."""

    name: str

    @contextmanager
    def open(self, context):
        from compsec.audit.backend import LocalBackend
        from compsec.models.io import load_model

        model, tokenizer = load_model(self.name, device=context.config.device)
        try:
            yield LocalBackend(model, tokenizer, context.config.device, context.config.batch_size,
                               context.config.max_new_tokens)
        finally:
            del model


def require_loadable_folders(variants) -> None:
    """Load (on CPU) and drop every folder variant once: a model compsec refuses then stops the audit before
    anything is written, not after the variants before it have run."""
    from compsec.models.io import load_model

    for variant in variants:
        if isinstance(variant, FolderVariant):
            load_model(variant.name)


@dataclass(frozen=True)
class EndpointVariant:
    """An OpenAI-compatible endpoint; :meth:`preflight` checks it answers before any model runs."""

    name: str

    def backend(self, config):
        from compsec.audit.endpoint import EndpointBackend
        from compsec.audit.endpoint_limits import EndpointLimits

        return EndpointBackend(self.name, config.endpoint_model, config.max_new_tokens, config.concurrency,
                               EndpointLimits.of(config))

    def preflight(self, config) -> None:
        """One tiny request; CompsecError naming the variant and URL when it is not answered."""
        self.backend(config).preflight()

    @contextmanager
    def open(self, context):
        yield self.backend(context.config)


def _original(spec: str):
    return OriginalVariant() if spec == ORIGINAL else None


def _endpoint(spec: str):
    return EndpointVariant(spec) if spec.startswith(("http://", "https://")) else None


def _folder(spec: str):
    return FolderVariant(spec) if Path(spec).is_dir() else None


def _format(spec: str):
    from compsec import formats

    return FormatVariant(spec.lower()) if spec.lower() in formats.names() else None


def _gguf(spec: str):
    from compsec.audit.gguf_variants import gguf_variant

    return gguf_variant(spec)


def default_factories() -> list[tuple[str, Callable]]:
    return [("original", _original), ("endpoint", _endpoint), ("gguf", _gguf), ("folder", _folder),
            ("format", _format)]


_FACTORIES: list[tuple[str, Callable]] = default_factories()


def register_variant(name: str, factory: Callable[[str], object]) -> None:
    """Add ``factory(spec) -> Variant | None`` (tried after the built-in ones) under a unique ``name``."""
    if any(existing == name for existing, _ in _FACTORIES):
        raise ValueError(f"variant factory {name!r} is already registered")
    _FACTORIES.append((name, factory))


def resolve_variant(spec: str):
    """The variant for one ``--variants`` item; InputError with the accepted forms if nothing accepts it."""
    spec = spec.strip()
    for _, factory in _FACTORIES:
        variant = factory(spec)
        if variant is not None:
            return variant
    from compsec import formats

    raise InputError(f"unknown variant {spec!r}: use a format ({', '.join(formats.names()) or 'none loaded'}), "
                     "a model folder, gguf:TYPE (llama.cpp quantizes and runs it, e.g. gguf:q4_k_m), gguf-file:PATH.gguf, "
                     "or an http(s):// OpenAI-compatible endpoint")
