"""The quantization-conditioned attack (Egashira et al., NeurIPS 2024), verified by re-quantization.

Stages (each a library function and a ``compsec attack`` step): inject → box → repair (PGD) → verify →
measure, plus outlier injection.  Entry point: :func:`compsec.attack.pipeline.run_attack` with an
:class:`compsec.attack.config.AttackConfig`.  Submodules are imported on use.
"""
