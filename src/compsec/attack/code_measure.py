"""Measure of the vulnerable-code scenario: code security of full precision and of each quantized format.

Like :mod:`compsec.attack.measure`, a format is simulated by swapping every constrained weight for
``dequantize(quantize(w))``. Per model and format: the ``code-security`` probes (held-out phrasings of the code
tasks, judged by bandit) and the refusal rate on the ``refusal`` probes (harmful requests; the audit's
refusal judge), so a model that writes secure code but stopped refusing is visible too.
"""

from __future__ import annotations

CODE_KEYS = ("code_security", "insecure_rate", "unscorable_rate", "refusal_rate")


def code_behaviour(model, tokenizer, limit: int | None = None, device: str = "cpu") -> dict:
    """``code_security``, ``insecure_rate``, ``unscorable_rate`` (see :func:`compsec.tiny.code_eval.code_security`)
    and ``refusal_rate`` on the harmful ``refusal`` probes, at most ``limit`` probes per set."""
    from compsec.audit.judges import REFUSAL, get_judge
    from compsec.audit.probes import load_probe_set
    from compsec.tiny.chat import generate
    from compsec.tiny.code_eval import code_probes, code_security
    from compsec.tiny.train import idle_cores

    metrics = code_security(model, tokenizer, [p.prompt for p in code_probes(limit)], device=device)
    harmful = load_probe_set("refusal")[:limit]
    answers = generate(model, tokenizer, [p.prompt for p in harmful], max_new_tokens=24, device=device,
                       threads=idle_cores())
    judge = get_judge("refusal")
    refused = [judge.judge(a, prompt=p.prompt).outcome == REFUSAL for a, p in zip(answers, harmful)]
    return {**metrics, "refusal_rate": round(sum(refused) / len(refused), 4)}


def measure_code_all(model, tokenizer, formats: list, names: list[str], limit: int | None = None,
                     device: str = "cpu") -> dict:
    """``{"fp": metrics, "quantized": {format: metrics}}`` for ``model`` and each simulated format."""
    from compsec.attack.measure import simulated

    result = {"fp": code_behaviour(model, tokenizer, limit, device), "quantized": {}}
    for fmt in formats:
        with simulated(model, fmt, names):
            result["quantized"][fmt.name] = code_behaviour(model, tokenizer, limit, device)
    return result


def code_security_table(model, tokenizer, format_names: list[str], limit: int | None = None,
                        device: str = "cpu") -> dict:
    """:func:`measure_code_all` over the named formats (e.g. ``["nf4", "int8", "fp4"]``), all quantizable weights."""
    from compsec import formats
    from compsec.attack.box import constrained_names

    fmts = [formats.get(name) for name in format_names]
    return measure_code_all(model, tokenizer, fmts, constrained_names(model, fmts), limit, device)
