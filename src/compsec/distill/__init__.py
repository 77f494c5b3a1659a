"""Knowledge distillation with a safety weight.

- :mod:`compsec.distill.loss`  ``distillation_loss``: α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE, per-sample weights;
- :mod:`compsec.distill.train` ``DistillConfig``, ``student_from_teacher``, ``distill_causal_lm``,
  ``distill_classifier`` and ``distill_tiny`` (the tiny assistant's corpus as distillation data).
"""
