"""Bridges to the evaluation tools teams already run; each is an optional extra, imported lazily.

- :mod:`compsec.bridges.lm_eval_bridge`  lm-evaluation-harness tasks on every audit variant (``compsec[lm-eval]``);
- :mod:`compsec.bridges.garak_compare`   the paired original-vs-compressed view of two garak JSONL reports
  (reads the reports only: garak itself is never imported, it runs in its own environment).
"""
