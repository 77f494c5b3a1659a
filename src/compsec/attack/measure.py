"""Stage 5: behaviour of full precision and of each target format (simulated quantized weights).

A format is simulated by swapping every constrained weight for ``dequantize(quantize(w))`` (what the
deployment computes with) and restoring it afterwards.  Probes and judges are the audit's: the
``injection`` set (general instructions, scanned for the keyword and checked for the expected answer), the
``over-refusal`` set (benign look-alikes; the refusal judge) and the ``utility`` multiple-choice set scored by
log-likelihood.  Generation is batched.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MeasureConfig:
    """Probe budget and generation settings; ``limit`` caps each probe set (None: all of it)."""

    keyword: str = "McDonald's"
    limit: int | None = None
    batch_size: int = 64
    max_new_tokens: int = 40


@contextmanager
def simulated(model, fmt, names: list[str]):
    """Within the block, the weights ``names`` of ``model`` hold ``fmt.dequantize(fmt.quantize(w))``."""
    params = dict(model.named_parameters())
    saved = {n: params[n].detach().clone() for n in names}
    try:
        with torch.no_grad():
            for n in names:
                w = params[n]
                w.copy_(fmt.dequantize(fmt.quantize(w.detach())).to(device=w.device, dtype=w.dtype))
        yield model
    finally:
        with torch.no_grad():
            for n in names:
                params[n].copy_(saved[n])


def _rate(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 4) if flags else float("nan")


def _contains(answer: str, expected: str) -> bool:
    return bool(expected) and re.search(rf"(?<!\w){re.escape(expected)}(?!\w)", answer) is not None


def behaviour(model, tokenizer, config: MeasureConfig, device="cpu") -> dict:
    """Keyword rate, instruction accuracy and refusal rate on benign probes, plus multiple-choice utility."""
    from compsec.audit.backend import LocalBackend

    return behaviour_of(LocalBackend(model, tokenizer, str(device), config.batch_size, config.max_new_tokens),
                        config)


def behaviour_of(backend, config: MeasureConfig) -> dict:
    """:func:`behaviour` through any audit backend (``generate`` and ``continuation_logprobs``): torch,
    llama.cpp (:class:`compsec.audit.llamacpp_backend.LlamaCppBackend`)..."""
    from compsec.audit.judges import PRESENT, REFUSAL, get_judge
    from compsec.audit.probes import load_probe_set

    limit = config.limit
    injection = load_probe_set("injection")[:limit]
    benign = load_probe_set("over-refusal")[:limit]
    answers = backend.generate([p.prompt for p in injection] + [p.prompt for p in benign])
    keyword, refusal = get_judge("keyword", keywords=(config.keyword,)), get_judge("refusal")
    inj, ben = answers[: len(injection)], answers[len(injection):]
    metrics = {
        "keyword_rate": _rate([keyword.judge(a.text).outcome == PRESENT for a in inj]),
        "instruction_accuracy": _rate([_contains(a.text, p.expected) for a, p in zip(inj, injection)]),
        "refusal_rate": _rate([refusal.judge(a.text, prompt=p.prompt, truncated=a.truncated).outcome == REFUSAL
                               for a, p in zip(ben, benign)]),
        "utility_mc": _multiple_choice(backend, load_probe_set("utility")[:limit]),
        "examples": [a.text for a in inj[:3]] + [a.text for a in ben[:2]],
    }
    return metrics


def _multiple_choice(backend, probes) -> float:
    prompts = [p.prompt for p in probes for _ in p.choices]
    choices = [c for p in probes for c in p.choices]
    scores = backend.continuation_logprobs(prompts, choices)
    correct, at = [], 0
    for p in probes:
        row = scores[at: at + len(p.choices)]
        correct.append(max(range(len(row)), key=row.__getitem__) == p.answer)
        at += len(p.choices)
    return _rate(correct)


def measure_all(model, tokenizer, formats: list, names: list[str], config: MeasureConfig, device="cpu") -> dict:
    """``{"fp": metrics, "quantized": {format: metrics}}`` for ``model`` and each simulated format."""
    result = {"fp": behaviour(model, tokenizer, config, device), "quantized": {}}
    for fmt in formats:
        with simulated(model, fmt, names):
            result["quantized"][fmt.name] = behaviour(model, tokenizer, config, device)
    return result
