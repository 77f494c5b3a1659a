"""``compsec audit --ray``: each variant of an audit in its own Ray actor, every record into the one event log.

The driver (this process) resolves the variants, opens ``events.jsonl`` as the in-process audit does, and starts
one actor per variant with work left, at most ``ray_workers`` at a time. An actor loads the original model
itself (the driver loads none) and steps through :func:`compsec.audit.step.variant_batches` -- the function
the in-process audit runs -- one batch per call: the driver appends each batch to the log before it asks for
the next, so an actor that dies loses at most the batch it was computing, and summary, report and resume are
the in-process audit's. (A Ray generator would run ahead, and Ray drops the items a dead actor yielded that
the driver had not read yet.)

Resources: with ``--device cuda`` every actor asks for one GPU (Ray gives it its own, seen as ``cuda``) and the
cluster must have one; otherwise one CPU. An actor that dies (its process killed, a node lost) is replaced by a
fresh one for what the log still misses, up to ``ray_retries`` times; a variant that raises, or dies once more
than that, gets a ``stopped`` fault record naming the cause, the other variants go on, and the run ends
incomplete (exit 2 in the CLI; the same command resumes it).
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from compsec.audit.config import AuditConfig
from compsec.audit.probes import Probe
from compsec.audit.record import FAULT, Record
from compsec.errors import InputError

POLL_S = 0.5


class VariantActor:
    """A Ray actor's state: the audit context (the original model, loaded on first use) and one variant's batches."""

    def __init__(self, config: AuditConfig):
        from compsec.audit.context import AuditContext

        self.context = AuditContext(config)
        self.batches = iter(())

    def start(self, variant, todo: list[Probe], faults_logged: int) -> None:
        """Prepare ``todo`` on ``variant``; nothing runs before :meth:`next_batch`."""
        from compsec.audit.step import variant_batches

        self.batches = variant_batches(self.context, variant, todo, faults_logged)

    def next_batch(self) -> tuple[list[Record], int] | None:
        """The next ``(records, done)`` of the variant, or None when it is finished."""
        return next(self.batches, None)


def run_on_ray(config: AuditConfig, variants: list, probes: list[Probe],
               on_record: Callable[[Record], None] | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> None:
    """Run every variant with work left in its own actor on ``config.ray``; records go to ``config.out``'s log."""
    from compsec.cluster.session import import_ray, ray_session

    ray = import_ray("audit --ray")
    address = "" if config.ray == "local" else config.ray
    local_cpus = config.ray_workers or min(len(variants), os.cpu_count() or 1)
    with ray_session(address, local_cpus, verb="audit --ray"):
        resources, capacity = actor_resources(ray, config.device)
        from compsec.audit.runner import open_log

        log = open_log(config, variants, probes)
        width = config.ray_workers or max(1, min(len(variants), capacity))
        _Dispatcher(ray, config, log, probes, resources, on_record, progress).run(variants, width)


def actor_resources(ray, device: str) -> tuple[dict, int]:
    """Ray options of one actor for ``device``, and how many such actors the cluster holds at once."""
    totals = ray.cluster_resources()
    if device.startswith("cuda"):
        if totals.get("GPU", 0) < 1:
            raise InputError(f"--device {device} with --ray: the Ray cluster has no GPU; use --device cpu, or join a "
                             "cluster with GPUs (--ray auto / HOST:PORT)")
        return {"num_gpus": 1, "num_cpus": 1}, int(totals["GPU"])
    return {"num_cpus": 1}, max(1, int(totals.get("CPU", 1)))


@dataclass
class _Running:
    variant: object
    actor: object
    total: int


class _Dispatcher:
    """Starts actors, appends the batches they yield to the log, replaces dead ones, stops failing variants."""

    def __init__(self, ray, config: AuditConfig, log, probes: list[Probe], resources: dict, on_record, progress):
        self.ray, self.config, self.log, self.probes = ray, config, log, probes
        self.on_record, self.progress = on_record, progress
        device = "cuda" if config.device.startswith("cuda") else config.device  # the actor's own GPU
        self.actor_config = replace(config, device=device, ray="")
        self.actor_class = ray.remote(VariantActor).options(max_restarts=0, max_task_retries=0, **resources)
        self.running: dict = {}
        self.deaths: Counter = Counter()

    def run(self, variants: list, width: int) -> None:
        queue = deque(variants)
        while queue or self.running:
            while queue and len(self.running) < width:
                self._start(queue.popleft())
            if not self.running:  # every variant left was already complete in the log
                break
            ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=POLL_S)
            for ref in ready:
                self._advance(ref, queue)

    def _start(self, variant) -> None:
        from compsec.audit.runner import fault_count, pending

        todo = pending(self.log.finished(), variant.name, self.probes)
        if not todo:
            return
        actor = self.actor_class.remote(self.actor_config)
        actor.start.remote(variant, todo, fault_count(self.log))
        self.running[actor.next_batch.remote()] = _Running(variant, actor, len(todo))

    def _advance(self, ref, queue: deque) -> None:
        from compsec.audit.runner import append_batch

        entry = self.running.pop(ref)
        name = entry.variant.name
        try:
            batch = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as err:  # the variant raised: retrying would raise again
            self.ray.kill(entry.actor)
            self._stopped(name, f"failed in its Ray actor: {_one_line(err.cause or err)}")
            return
        except self.ray.exceptions.RayError as err:  # the process died (killed, OOM, node lost) or its answer was lost
            self.ray.kill(entry.actor)
            self.deaths[name] += 1
            if self.deaths[name] <= self.config.ray_retries:
                queue.appendleft(entry.variant)  # a fresh actor, for what the log still misses
            else:
                self._stopped(name, f"its Ray actor died {self.deaths[name]} times (last: {_one_line(err)})")
            return
        if batch is None:
            self.ray.kill(entry.actor)  # frees its model (and GPU) now
            return
        records, done = batch
        append_batch(self.log, records, self.on_record)
        self.running[entry.actor.next_batch.remote()] = entry
        if self.progress:
            self.progress(name, done, entry.total)

    def _stopped(self, variant: str, why: str) -> None:
        from compsec.audit.runner import append_batch, fault_count

        message = f"variant {variant} stopped: {why}; rerun the same command to resume it from the log"
        number = fault_count(self.log) + 1
        append_batch(self.log, [Record(f"actor#{number}", FAULT, variant, "", category="stopped",
                                       reasons={"fault": message})], self.on_record)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300] or type(err).__name__
