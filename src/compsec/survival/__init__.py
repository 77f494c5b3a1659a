"""Does a planted backdoor survive compression?

- :mod:`compsec.survival.backdoor`    plant a BadNets corner patch in the digits MLP, a trigger phrase in the
  tiny assistant; attack success rate (ASR) and clean accuracy;
- :mod:`compsec.survival.compress`    the compressions compared: simulated quantization formats, magnitude
  pruning, 2:4, a distilled student;
- :mod:`compsec.survival.finepruning` the defence row (Liu et al. 2018): prune dormant neurons, fine-tune;
- :mod:`compsec.survival.table`       one row per (model, compression) and ``survival.json``.
"""
