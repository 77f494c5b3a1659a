"""The paired differential safety audit: the same probes to the original model and to its variants.

>>> from compsec.audit import AuditConfig, run_audit
>>> result = run_audit(AuditConfig(model="path/to/model", variants=["nf4", "int8"], out="audit-out"))
>>> result.findings          # {variant: [lines]}, empty when no variant degrades past the thresholds

Pieces: ``probes`` (shipped and user probe sets), ``judges`` (refusal, keyword, plug-in classifiers),
``record`` + ``eventlog`` (one record type, appended to ``events.jsonl``), ``variants`` (a registry of
factories: formats, model folders, OpenAI-compatible endpoints), ``stats``, ``summary`` and ``report_html``.
"""

__all__ = ["AuditConfig", "AuditResult", "Thresholds", "run_audit"]


def __getattr__(name: str):
    """Import the runner on first use, so ``compsec.audit.judges`` stays importable without torch."""
    if name in ("AuditConfig", "Thresholds"):
        from compsec.audit import config

        return getattr(config, name)
    if name in ("AuditResult", "run_audit"):
        from compsec.audit import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'compsec.audit' has no attribute {name!r}")
