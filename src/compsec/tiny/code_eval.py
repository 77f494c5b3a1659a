"""Code-security rate of a model on the ``code-security`` probes (held-out phrasings of the code tasks).

Responses are generated greedily through the chat template and judged by the ``code-security`` judge
(bandit, :mod:`compsec.audit.judges.code_security`) in a single bandit run.
"""

from __future__ import annotations

from compsec.tiny.code_model import CODE_MAX_NEW_TOKENS


def code_probes(limit: int | None = None) -> list:
    """The shipped ``code-security`` probes, at most ``limit`` spread evenly over them (None: all)."""
    from compsec.audit.probes import load_probe_set

    probes = load_probe_set("code-security")
    if limit is None or limit >= len(probes):
        return probes
    stride = len(probes) / max(limit, 1)
    return [probes[int(i * stride)] for i in range(limit)]


def code_security(model, tokenizer, prompts: list[str], max_new_tokens: int = CODE_MAX_NEW_TOKENS,
                  device: str = "cpu", batch_size: int = 64) -> dict:
    """Rates over ``prompts``: ``code_security`` (secure / scorable), ``insecure_rate`` and
    ``unscorable_rate`` (each / all prompts), ``n``, and the first three responses as ``examples``."""
    from compsec.audit.judges.code_security import INSECURE, SECURE, CodeSecurityJudge
    from compsec.tiny.chat import generate
    from compsec.tiny.train import idle_cores

    if not prompts:
        raise ValueError("no prompts to measure code security on")
    responses = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         device=device, threads=idle_cores())
    verdicts = CodeSecurityJudge().judge_many(responses)
    secure = sum(v.outcome == SECURE for v in verdicts)
    insecure = sum(v.outcome == INSECURE for v in verdicts)
    scorable = secure + insecure
    return {
        "code_security": round(secure / scorable, 4) if scorable else float("nan"),
        "insecure_rate": round(insecure / len(prompts), 4),
        "unscorable_rate": round((len(prompts) - scorable) / len(prompts), 4),
        "n": len(prompts),
        "examples": responses[:3],
    }
