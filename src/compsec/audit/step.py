"""One variant of an audit: its pending probes sent through its backend, judged, as batches of records.

:func:`variant_batches` is the per-variant function of an audit, the same wherever it runs: in the auditing
process (:func:`compsec.audit.runner.run_audit` appends each batch to the event log as it comes) or in a Ray
actor (:mod:`compsec.audit.on_ray`: the actor yields the batches, the driver appends them to the same log).
It never writes anything itself. What goes wrong on the way to a response (an endpoint's retries, failures, cut
answers, a circuit breaker that stops the variant) comes back as records of kind ``fault``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch

from compsec.audit.backend import chat_text, mean_token_kl
from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.generation import Fault, Generation
from compsec.audit.judges import KeywordJudge, get_judge, judge_all
from compsec.audit.judges.text import normalise
from compsec.audit.probes import Probe
from compsec.audit.record import FAULT, Record
from compsec.audit.variants import ORIGINAL

KIND_ORDER = ("refusal", "over-refusal", "injection", "utility", "code-security", "contrast")


def variant_batches(context: AuditContext, variant, todo: list[Probe],
                    faults_logged: int = 0) -> Iterator[tuple[list[Record], int]]:
    """Run ``todo`` (probes without a record yet) on ``variant``; yield ``(records, probes done so far)`` per batch.

    ``faults_logged`` is the number of fault records already in the log: new faults are numbered after it, so
    their keys stay unique in the log. The torch seed is set to ``config.seed`` before the variant opens.
    """
    if not todo:
        return
    texts = {p.id: chat_text(context.tokenizer, p.prompt) + p.expected for p in todo if p.kind == "contrast"}
    reference = (texts, context.reference_logprobs(texts)) if texts else None
    torch.manual_seed(context.config.seed)
    step = VariantStep(context.config, faults_logged)
    with variant.open(context) as backend:
        yield from step.run(variant.name, backend, todo, reference)


class VariantStep:
    """Runs one variant's pending probes through its backend and returns the records of each batch."""

    def __init__(self, config: AuditConfig, faults_logged: int = 0):
        self.config, self.faults_logged = config, faults_logged
        self.refusal_judge = get_judge(config.judge, **({"url": config.judge_url} if config.judge_url else {}))
        self.keyword_judge = KeywordJudge(tuple(config.keywords))
        self.faults: list[Record] = []

    def run(self, variant: str, backend, todo: list[Probe], reference: tuple | None):
        """Yield ``(records, done)`` after each batch (``done``: probes of ``todo`` handled so far)."""
        handlers = {"utility": self._utility, "code-security": self._code, "contrast": self._contrast}
        size, done = self.config.batch_size, 0
        for kind in KIND_ORDER:
            batch_of_kind = [p for p in todo if p.kind == kind]
            for start in range(0, len(batch_of_kind), size):
                batch = batch_of_kind[start:start + size]
                started = time.perf_counter()
                records = handlers.get(kind, self._generated)(variant, backend, batch, reference)
                share = (time.perf_counter() - started) / len(batch)
                for record in records:
                    record.timing["seconds"] = round(share, 6)
                    record.backend = getattr(backend, "label", "")
                done += len(batch)
                records = self._with_faults(records)
                if getattr(backend, "stopped", None):  # an endpoint's circuit breaker opened: stop this variant
                    self._fault(variant, "breaker", "", Fault("stopped", backend.stopped))
                    yield self._with_faults(records), done
                    return
                yield records, done

    def _with_faults(self, records: list[Record]) -> list[Record]:
        """The faults kept since the last call (in the order they happened), then ``records``."""
        out, self.faults = self.faults + records, []
        return out

    def _fault(self, variant: str, about: str, prompt: str, fault: Fault) -> None:
        """Keep one fault as a record of kind ``fault`` (numbered: the same probe may fail in several runs)."""
        self.faults_logged += 1
        scores = {"attempt": float(fault.attempt), "status": float(fault.status), "seconds": fault.seconds}
        self.faults.append(Record(f"{about}#{self.faults_logged}", FAULT, variant, prompt, category=fault.kind,
                                  reasons={"fault": fault.message}, scores=scores))

    def _answers(self, variant: str, backend, batch: list[Probe]) -> tuple[list[Probe], list[Generation]]:
        """Generate for ``batch``; log every fault; return the probes that got an answer, with their answers."""
        answered, generations = [], []
        for probe, generation in zip(batch, backend.generate([p.prompt for p in batch]), strict=True):
            for fault in generation.faults:
                self._fault(variant, f"{probe.kind}/{probe.id}", probe.prompt, fault)
            if generation.error is None:
                answered.append(probe)
                generations.append(generation)
        return answered, generations

    def _generated(self, variant: str, backend, batch: list[Probe], reference) -> list[Record]:
        batch, generations = self._answers(variant, backend, batch)
        if not batch:
            return []
        wants_margin = variant == ORIGINAL and batch[0].kind == "refusal"
        margins = self._margins(backend, batch) if wants_margin else [None] * len(batch)
        refusals = judge_all(self.refusal_judge, [g.text for g in generations], [p.prompt for p in batch],
                             [g.truncated for g in generations])  # one batch: a model judge reads them together
        records = []
        for probe, generation, margin, refusal in zip(batch, generations, margins, refusals):
            record = _record(probe, variant, response=generation.text, truncated=generation.truncated)
            record.judges["refusal"], record.reasons["refusal"] = refusal.outcome, refusal.reason
            if probe.kind == "injection":
                verdict = self.keyword_judge.judge(generation.text, prompt=probe.prompt, truncated=generation.truncated)
                record.judges["keyword"], record.reasons["keyword"] = verdict.outcome, verdict.reason
            if margin is not None:
                record.scores["refusal_margin"] = margin
            if probe.kind == "injection" and probe.expected:
                record.scores["instruction_correct"] = float(normalise(probe.expected) in normalise(generation.text))
            records.append(record)
        return records

    def _code(self, variant: str, backend, batch: list[Probe], reference) -> list[Record]:
        """Generated code judged by bandit (one run per batch): ``judges["code"]`` secure / insecure / unscorable."""
        batch, generations = self._answers(variant, backend, batch)
        if not batch:
            return []
        verdicts = get_judge("code-security").judge_many([g.text for g in generations],
                                                         [g.truncated for g in generations])
        records = []
        for probe, generation, verdict in zip(batch, generations, verdicts):
            record = _record(probe, variant, response=generation.text, truncated=generation.truncated)
            record.judges["code"], record.reasons["code"] = verdict.outcome, verdict.reason
            records.append(record)
        return records

    def _margins(self, backend, batch: list[Probe]) -> list[float | None]:
        """log-sum-exp of refusal openings minus that of complying openings, per probe, in nats."""
        refusal, comply = self.config.refusal_openings, self.config.compliance_openings
        openings = refusal + comply
        prompts = [p.prompt for p in batch for _ in openings]
        scores = backend.continuation_logprobs(prompts, list(openings) * len(batch))
        if scores is None:
            return [None] * len(batch)
        per_probe = [scores[i * len(openings):(i + 1) * len(openings)] for i in range(len(batch))]
        return [_logsumexp(s[: len(refusal)]) - _logsumexp(s[len(refusal):]) for s in per_probe]

    def _utility(self, variant: str, backend, batch: list[Probe], reference) -> list[Record]:
        prompts = [p.prompt for p in batch for _ in p.choices]
        scores = backend.continuation_logprobs(prompts, [c for p in batch for c in p.choices])
        records, offset = [], 0
        for probe in batch:
            record = _record(probe, variant)
            if scores is not None:
                mine = scores[offset:offset + len(probe.choices)]
                choice = max(range(len(mine)), key=mine.__getitem__)
                record.scores.update(choice=float(choice), correct=float(choice == probe.answer))
            offset += len(probe.choices)
            records.append(record)
        return records

    def _contrast(self, variant: str, backend, batch: list[Probe], reference: tuple) -> list[Record]:
        """Mean per-token KL(original || variant) on each contrast text (none for backends that cannot score)."""
        texts, original = reference
        records = [_record(probe, variant) for probe in batch]
        logprobs = backend.next_token_logprobs([texts[p.id] for p in batch])
        for record, mine in zip(records, logprobs or []):
            if mine.shape != original[record.probe_id].shape:
                record.reasons["kl"] = "tokenizer differs from the original's; KL is not comparable"
                continue
            record.scores["kl"] = mean_token_kl(original[record.probe_id], mine)
            record.scores["tokens"] = float(mine.shape[0])
        return records


def _record(probe: Probe, variant: str, **fields) -> Record:
    return Record(probe.id, probe.kind, variant, probe.prompt, category=probe.category, **fields)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
