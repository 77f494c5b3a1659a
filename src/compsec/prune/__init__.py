"""Pruning: unstructured magnitude (global / per-layer), N:M semi-structured, attention heads.

- :mod:`compsec.prune.magnitude` ``magnitude_masks`` / ``apply_masks`` / ``prunable_weights``;
- :mod:`compsec.prune.nm`        ``nm_mask`` (2:4 along the input dimension);
- :mod:`compsec.prune.wanda`     ``activation_norms`` / ``wanda_masks`` (Wanda: ``|w|·‖x‖`` per output row);
- :mod:`compsec.prune.heads`     ``HeadMask`` (a real per-head mask via forward pre-hooks) and ``prune_heads``;
- :mod:`compsec.prune.ranking`   ``rank_heads``: ablate one head at a time, measure the refusal-rate change;
- :mod:`compsec.prune.model`     ``prune_model``: one entry point for the CLI and the audit variants;
- :mod:`compsec.prune.variants`  registers the ``prune-<percent>`` / ``prune-2:4`` audit variants on import.
"""
