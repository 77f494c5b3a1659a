"""``run_audit``: send every probe to the original and to each variant, judge, and log one record each.

Order: the original first, then the variants as given. Within a variant, generation probes go in batches of
``batch_size``; each record is appended (and flushed) to ``events.jsonl`` as soon as it is produced, so a run
killed at any point resumes from the log. At the end ``summary.json`` and ``report.html`` are rendered from
the log alone.

Before the log is opened or any model runs, every variant with work left that can check itself (endpoints:
one tiny request) does, so a dead endpoint fails in seconds. What goes wrong on the way to a response (an
endpoint's retries, failures, cut answers, a circuit breaker that stops the variant) is logged as records of
kind ``fault``; a prompt that got no answer gets no record of its own, so the run is *incomplete*
(:mod:`compsec.audit.completeness`) and the next run into the same folder sends only what is missing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from compsec.audit.backend import chat_text, mean_token_kl
from compsec.audit.config import AuditConfig
from compsec.audit.context import AuditContext
from compsec.audit.eventlog import LOG_NAME, EventLog, read_log
from compsec.audit.generation import Fault, Generation
from compsec.audit.judges import KeywordJudge, get_judge
from compsec.audit.judges.text import normalise
from compsec.audit.probes import KINDS, Probe, load_probe_set, load_probe_sets
from compsec.audit.record import FAULT, Record
from compsec.audit.summary import build_summary
from compsec.audit.variants import ORIGINAL, require_loadable_folders, resolve_variant
from compsec.errors import InputError

GENERATED = ("refusal", "over-refusal", "injection")


@dataclass
class AuditResult:
    """Where the run wrote, its summary dict, and ``findings`` (``{variant: [lines]}``, empty when clean)."""

    out: Path
    summary: dict

    @property
    def findings(self) -> dict[str, list[str]]:
        return self.summary.get("findings", {})


def run_audit(config: AuditConfig, *, model=None, tokenizer=None,
              on_record: Callable[[Record], None] | None = None,
              progress: Callable[[str, int, int], None] | None = None) -> AuditResult:
    """Run (or resume) the audit described by ``config``; see the module docstring.

    ``model``/``tokenizer`` may be passed preloaded (else ``config.model`` is loaded once). ``on_record`` is
    called after each record is logged; ``progress(variant, done, total)`` after each batch.
    """
    probes = load_probe_sets(list(config.probes), config.limit)
    if config.contrast:
        probes += load_probe_set("contrast")[: config.limit]
    if not probes:
        raise InputError(f"nothing to audit: no probe set given; use --probes with shipped sets ({', '.join(KINDS)}) "
                         "or your own files")
    variants = [resolve_variant(spec) for spec in (ORIGINAL, *config.variants)]
    preflight(config, variants, probes)  # endpoints first: a dead server fails in seconds, before any model loads
    context = AuditContext(config, model, tokenizer)
    _ = context.model  # load (and so validate) the original and the folder variants before anything is written
    require_loadable_folders(variants)
    plan = {"variants": [v.name for v in variants], "probes": [f"{p.kind}/{p.id}" for p in probes]}
    log = EventLog.open(config.out, config.hashed(), plan=plan)
    step = _Step(config, log, on_record, progress)
    for variant in variants:
        todo = _pending(log.finished(), variant.name, probes)
        if not todo:
            continue
        texts = _contrast_texts(context, [p for p in todo if p.kind == "contrast"])
        reference = (texts, context.reference_logprobs(texts)) if texts else None
        torch.manual_seed(config.seed)
        with variant.open(context) as backend:
            step.run(variant.name, backend, todo, reference)
    return render(config.out)


def preflight(config: AuditConfig, variants: list, probes: list[Probe]) -> None:
    """Let every variant with work left and a ``preflight(config)`` (endpoints) check itself, before any model runs.

    Raises the variant's CompsecError (exit 2 in the CLI) before the log is opened, so nothing is written.
    """
    log_path = Path(config.out) / LOG_NAME
    finished = {r.key for r in read_log(log_path)[1]} if _has_lines(log_path) else set()
    for variant in variants:
        check = getattr(variant, "preflight", None)
        if check is not None and _pending(finished, variant.name, probes):
            check(config)


def _has_lines(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def _pending(finished: set, variant: str, probes: list[Probe]) -> list[Probe]:
    return [p for p in probes if (variant, p.kind, p.id) not in finished]


def render(out: str | Path) -> AuditResult:
    """Write ``summary.json`` and ``report.html`` from ``out/events.jsonl`` alone; returns the result."""
    from compsec.audit.report_html import write_report

    out = Path(out)
    header, records = read_log(out)
    summary = build_summary(header, records)
    if (out / "lm_eval.json").is_file():  # the lm-eval bridge's scores survive a re-render
        scores = json.loads((out / "lm_eval.json").read_text(encoding="utf-8"))
        summary["lm_eval"] = {key: value for key, value in scores.items() if key != "seconds"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_report(out / "report.html", summary, records)
    return AuditResult(out, summary)


def _contrast_texts(context: AuditContext, probes: list[Probe]) -> dict[str, str]:
    return {p.id: chat_text(context.tokenizer, p.prompt) + p.expected for p in probes}


class _Step:
    """Runs one variant's pending probes through its backend and logs the records."""

    def __init__(self, config: AuditConfig, log: EventLog, on_record, progress):
        self.config, self.log, self.on_record, self.progress = config, log, on_record, progress
        self.refusal_judge = get_judge(config.judge, **({"url": config.judge_url} if config.judge_url else {}))
        self.keyword_judge = KeywordJudge(tuple(config.keywords))
        self.faults_logged = sum(1 for r in log.records() if r.kind == FAULT)

    def run(self, variant: str, backend, todo: list[Probe], reference: tuple | None) -> None:
        size, done = self.config.batch_size, 0
        for kind, handler in (("refusal", self._generated), ("over-refusal", self._generated),
                              ("injection", self._generated), ("utility", self._utility),
                              ("code-security", self._code), ("contrast", self._contrast)):
            batch_of_kind = [p for p in todo if p.kind == kind]
            for start in range(0, len(batch_of_kind), size):
                batch = batch_of_kind[start:start + size]
                started = time.perf_counter()
                records = handler(variant, backend, batch, reference)
                share = (time.perf_counter() - started) / len(batch)
                for record in records:
                    record.timing["seconds"] = round(share, 6)
                    record.backend = getattr(backend, "label", "")
                    self._emit(record)
                done += len(batch)
                if self.progress:
                    self.progress(variant, done, len(todo))
                if getattr(backend, "stopped", None):  # an endpoint's circuit breaker opened: stop this variant
                    self._fault(variant, "breaker", "", Fault("stopped", backend.stopped))
                    return

    def _emit(self, record: Record) -> None:
        self.log.append(record)
        if self.on_record:
            self.on_record(record)

    def _fault(self, variant: str, about: str, prompt: str, fault: Fault) -> None:
        """Log one fault as a record of kind ``fault`` (numbered: the same probe may fail in several runs)."""
        self.faults_logged += 1
        scores = {"attempt": float(fault.attempt), "status": float(fault.status), "seconds": fault.seconds}
        self._emit(Record(f"{about}#{self.faults_logged}", FAULT, variant, prompt, category=fault.kind,
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
        records = []
        for probe, generation, margin in zip(batch, generations, margins):
            record = _record(probe, variant, response=generation.text, truncated=generation.truncated)
            judges = [self.refusal_judge] + ([self.keyword_judge] if probe.kind == "injection" else [])
            for judge in judges:
                verdict = judge.judge(generation.text, prompt=probe.prompt, truncated=generation.truncated)
                key = "keyword" if judge is self.keyword_judge else "refusal"
                record.judges[key], record.reasons[key] = verdict.outcome, verdict.reason
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
