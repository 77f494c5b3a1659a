"""The explicit state of one audit run: the loaded original model, its saved weights, reference log-probs.

Nothing here is global: :func:`compsec.audit.runner.run_audit` makes one :class:`AuditContext` per call.
"""

from __future__ import annotations

import torch

from compsec.audit.backend import LocalBackend
from compsec.audit.config import AuditConfig


class AuditContext:
    """Loads the original model on first use (or takes a preloaded one) and keeps its weights once on CPU."""

    def __init__(self, config: AuditConfig, model=None, tokenizer=None):
        self.config = config
        self._model, self._tokenizer = model, tokenizer
        self._originals: dict[str, torch.Tensor] | None = None
        self._reference: dict[str, torch.Tensor] = {}

    @property
    def model(self):
        if self._model is None:
            from compsec.models.io import load_model

            self._model, self._tokenizer = load_model(self.config.model, device=self.config.device)
        return self._model

    @property
    def tokenizer(self):
        _ = self.model
        return self._tokenizer

    def local_backend(self) -> LocalBackend:
        cfg = self.config
        return LocalBackend(self.model, self.tokenizer, cfg.device, cfg.batch_size, cfg.max_new_tokens)

    def original_weights(self) -> dict[str, torch.Tensor]:
        """CPU copies of the quantizable weights as loaded, taken once; ``{parameter name: tensor}``."""
        if self._originals is None:
            from compsec.models.linear import quantizable_weights

            params = dict(self.model.named_parameters())
            names = [w.name for w in quantizable_weights(self.model) if w.name in params]
            self._originals = {name: params[name].detach().to("cpu", copy=True) for name in names}
        return self._originals

    def restore_weights(self) -> None:
        """Copy the saved original weights back into the model (bit-exact)."""
        if self._originals is None:
            return
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, original in self._originals.items():
                params[name].copy_(original.to(params[name].device))

    def reference_logprobs(self, texts: dict[str, str]) -> dict[str, torch.Tensor]:
        """The original model's next-token log-probs for each ``{id: text}``, computed once per id.

        Must be called while no variant is active (the weights are the original ones).
        """
        missing = {k: t for k, t in texts.items() if k not in self._reference}
        if missing:
            computed = self.local_backend().next_token_logprobs(list(missing.values()))
            self._reference.update(zip(missing, computed))
        return {k: self._reference[k] for k in texts}
