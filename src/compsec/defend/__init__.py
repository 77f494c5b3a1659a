"""Defences against quantization-conditioned attacks, and the matrix that measures them.

- :mod:`compsec.defend.noise`        seeded Gaussian weight noise, sigma per tensor (``auto``: calibrated from
                                     the target formats' box half-widths, so box-constrained weights re-randomise)
- :mod:`compsec.defend.clip`         clip block outliers back to a robust bound (undoes outlier injection)
- :mod:`compsec.defend.harden`       ``compsec harden``: clip + noise on a model folder, with provenance
- :mod:`compsec.defend.sensitivity`  per-tensor behavioural contrast KL(original || one tensor quantized)
- :mod:`compsec.defend.mixed`        safety-aware mixed precision written as a bitsandbytes-loadable folder
- :mod:`compsec.defend.adaptive`     the adaptive attacker: repair inside a box shrunk by the expected noise
- :mod:`compsec.defend.matrix`       attacks x defences -> ``defense.json``

Submodules are imported on use.
"""
