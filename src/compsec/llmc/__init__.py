"""Calibration-based compression through llm-compressor (GPTQ, AWQ, SmoothQuant, FP8, SparseGPT, Wanda).

llm-compressor pins an older transformers than compsec, so it runs in a side environment (``.venv-llmc``,
built by ``make llmc``) that only *writes* compressed-tensors folders; compsec's own environment loads them
with transformers and the ``compressed-tensors`` package, exactly as users deploy them.

- :mod:`compsec.llmc.recipes`      the registry: variant name -> llm-compressor modifiers (data, not code);
- :mod:`compsec.llmc.calibration`  the calibration texts (a JSONL file or the built-in set) and their digest;
- :mod:`compsec.llmc.side_env`     locating the side environment and the JSON contract with its worker;
- :mod:`compsec.llmc.build`        building (once, cached) or writing a variant's folder, with provenance;
- :mod:`compsec.llmc.variants`     the audit variants ``gptq-w4a16``, ``awq-w4a16``... (registered on import);
- :mod:`compsec.llmc.oneshot_worker` the script the side environment runs (standard library + llm-compressor).
"""
