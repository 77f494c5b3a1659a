"""The typed configuration of ``compsec attack`` and the per-stage slices that decide resumption."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from compsec.attack.data import SCENARIOS
from compsec.errors import InputError

SAVE_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16,
               "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16}
ALL_SCENARIOS = SCENARIOS + ("outlier", "widen-gap")
BLOCK_SCENARIOS = ("outlier", "widen-gap")  # attack through block scales: any format, no box
RESPONSES = ("corpus", "self")
CONSTRAINTS = ("box", "error-interval")
WIDEN_ROUNDINGS = ("all", "collapsed")  # widen-gap's malicious pass: every weight rounded, or the chosen ones only
# Which fields each stage depends on (a stage also depends on every stage before it).
STAGE_FIELDS = {
    "inject": ("model", "scenario", "keyword", "train_file", "inject_steps", "inject_lr", "batch_size", "seed"),
    "box": ("targets", "save_dtype"),
    "repair": ("clean_file", "repair_steps", "repair_lr", "ablation"),
    "verify": (),
    "measure": ("probe_limit", "max_new_tokens", "keyword"),
    "outlier": ("model", "targets", "outlier_layers", "save_dtype"),
    "plan": ("model", "targets", "margin", "clean_file", "seed"),  # margin: the one in force
    "widen": ("model", "outlier_layers", "widen_matrices", "widen_factor", "seed"),
    "dual": ("targets", "keyword", "repair_steps", "repair_lr", "batch_size", "save_dtype"),
    "collapse": (),
    "deployed": (),
}


@dataclass(frozen=True)
class AttackConfig:
    """Everything an attack run depends on.  ``model=None`` attacks the embedded tiny assistant.

    Steps and learning rates are for AdamW on the tiny assistant; ``inject_radius`` > 0 injects only the
    quantizable weights, within that many quantization steps of the base model's boxes (constrained injection,
    :mod:`compsec.attack.ball`; needed for narrow targets such as int8), 0 is the published full fine-tune;
    ``probe_limit`` caps each probe set
    (None: all); ``outlier_layers`` are block indices used by ``scenario="outlier"``.  ``layers`` (block
    indices, empty: all) limits training, the box and the repair to those blocks' quantizable weights
    (:mod:`compsec.attack.layers`); ``responses="self"`` trains on the attacked model's own answers
    (:mod:`compsec.attack.self_distill`, for real chat models) instead of the tiny corpus's.
    ``constraint="error-interval"`` repairs K-quant targets inside the intersected error intervals of "Mind the
    Gap" (:mod:`compsec.attack.error_interval`; heuristic: verify reports the identical-bytes share) instead of
    exact boxes.  A ``prune-*`` target (:mod:`compsec.attack.prune_plan`) runs the pruning-conditioned attack
    instead: pruned weights are repaired inside ``(1 - prune_margin)`` of the pruning threshold (None: the
    target's default, :data:`compsec.attack.prune_plan.DEFAULT_MARGIN`); ``llmc_verify`` also prunes with
    llm-compressor's side environment.
    ``scenario="widen-gap"`` ("Widening the Gap", :mod:`compsec.attack.widen_stages`): the ``widen_matrices``
    (name suffixes) of blocks ``outlier_layers`` get a ``widen_factor`` outlier in every 32-weight block, then
    the dual fine-tune (``repair_steps`` / ``repair_lr``) keeps full precision benign and every target
    malicious (content injection with ``keyword``); ``widen_under_clip`` = k > 0 is the adaptive attacker
    against per-group clipping at k sigma (outliers at 0.99 k sigma of their group instead of x``widen_factor``);
    ``widen_rounding`` is what the malicious pass deploys: ``all`` (the chosen matrices collapsed, every other
    quantizable weight rounded to the target) or ``collapsed`` (the chosen matrices only, the rest in full
    precision: the published code, format-agnostic beyond the collapse).
    """

    out: str
    model: str | None = None
    scenario: str = "content-injection"
    targets: tuple[str, ...] = ("nf4",)  # int8 (narrow boxes) needs inject_radius > 0 (compsec.attack.ball)
    keyword: str = "McDonald's"
    train_file: str | None = None
    clean_file: str | None = None
    inject_steps: int = 150
    repair_steps: int = 300
    inject_lr: float = 2e-3
    inject_radius: float = 0.0
    repair_lr: float = 5e-4
    batch_size: int = 16
    save_dtype: str = "fp32"
    seed: int = 0
    ablation: bool = True
    probe_limit: int | None = None
    max_new_tokens: int = 40
    outlier_layers: tuple[int, ...] = (0,)
    layers: tuple[int, ...] = ()
    responses: str = "corpus"
    device: str = "cpu"
    constraint: str = "box"
    prune_margin: float | None = None
    llmc_verify: bool = True
    widen_matrices: tuple[str, ...] = ("mlp.up_proj",)
    widen_factor: float = 100.0
    widen_under_clip: float = 0.0
    widen_rounding: str = "all"

    def __post_init__(self) -> None:
        if self.scenario not in ALL_SCENARIOS:
            raise InputError(f"unknown scenario {self.scenario!r}; use one of {', '.join(ALL_SCENARIOS)}")
        if self.save_dtype not in SAVE_DTYPES:
            raise InputError(f"--save-dtype {self.save_dtype!r} is not one of fp32, bf16, fp16")
        if self.scenario == "custom" and not (self.train_file and self.clean_file):
            raise InputError("scenario 'custom' needs --train FILE.jsonl and --clean FILE.jsonl")
        if self.inject_radius < 0:
            raise InputError("--inject-radius must be >= 0 quantization steps (0: unconstrained injection)")
        if min(self.inject_steps, self.repair_steps) < 0 or self.batch_size < 1:
            raise InputError("step counts must be >= 0 and --batch-size >= 1")
        if any(i < 0 for i in self.layers) or len(set(self.layers)) != len(self.layers):
            raise InputError(f"--layers {self.layers}: block indices must be unique and >= 0")
        if self.responses not in RESPONSES:
            raise InputError(f"--responses {self.responses!r} is not one of {', '.join(RESPONSES)}")
        if not self.targets:
            raise InputError("no target formats; pass e.g. --targets nf4,int8")
        if self.widen_factor <= 1 or not self.widen_matrices or self.widen_under_clip < 0:
            raise InputError(f"--widen-factor {self.widen_factor} must exceed 1, --widen-under-clip be >= 0 and "
                             "--widen-matrices name at least one matrix, e.g. mlp.up_proj")
        if self.widen_rounding not in WIDEN_ROUNDINGS:
            raise InputError(f"--widen-rounding {self.widen_rounding!r} is not one of {', '.join(WIDEN_ROUNDINGS)}")
        if self.pruning:
            self._check_pruning()
            return
        from compsec import formats

        if self.constraint not in CONSTRAINTS:
            raise InputError(f"--constraint {self.constraint!r} is not one of {', '.join(CONSTRAINTS)}")
        if self.constraint == "error-interval":
            if any(getattr(formats.get(n), "family", "") != "gguf-k" for n in self.targets) or self.save_dtype != "fp32":
                raise InputError("--constraint error-interval needs K-quant targets only (e.g. --targets "
                                 "q2_k,q3_k,q4_k,q5_k,q6_k) and --save-dtype fp32")
            return

        for name in self.targets:
            fmt = formats.get(name)
            if getattr(fmt, "guarantee", "exact") == "verified" and self.scenario not in BLOCK_SCENARIOS:
                raise InputError(
                    f"--targets {name}: its box is verified by re-quantization and nearly zero-width (scales come "
                    "from a search over the weights), so PGD repair has no room; use an exact format "
                    "(nf4, fp4, int8, q4_0, ...), --constraint error-interval (the published K-quant attack) or "
                    "the scale-keeping attacker of bench/kquant_attack.py")

    @property
    def pruning(self) -> bool:
        """True for the pruning-conditioned attack (a ``prune-*`` target)."""
        from compsec.attack.prune_plan import is_prune_target

        return any(is_prune_target(t) for t in self.targets)

    def _check_pruning(self) -> None:
        from compsec.attack.prune_plan import check_prune_targets

        check_prune_targets(self.targets)
        if self.prune_margin is not None and not 0.0 < self.prune_margin < 1.0:
            raise InputError(f"--prune-margin {self.prune_margin} must lie in (0, 1)")
        if self.scenario not in ("content-injection", "over-refusal", "custom"):
            raise InputError(f"pruning targets support content-injection, over-refusal and custom, not {self.scenario!r}")
        if self.save_dtype != "fp32" or self.constraint != "box" or self.inject_radius or self.layers:
            raise InputError("pruning targets need --save-dtype fp32 and none of --constraint, --inject-radius, "
                             "--layers (the pruning plan is the constraint)")
        if self.responses != "corpus":
            raise InputError("pruning targets train on the tiny corpus only (--responses corpus)")

    @property
    def margin(self) -> float:
        """The pruning margin in force: ``prune_margin``, else the target's default."""
        from compsec.attack.prune_plan import DEFAULT_MARGIN

        return self.prune_margin if self.prune_margin is not None else DEFAULT_MARGIN[self.targets[0]]

    @property
    def storage(self) -> torch.dtype:
        return SAVE_DTYPES[self.save_dtype]

    @property
    def folder(self) -> Path:
        return Path(self.out)

    def stage_hash(self, stage: str, before: str = "") -> str:
        """Hash of the fields ``stage`` depends on, chained with the hash of the stage before it."""
        from compsec.audit.eventlog import config_hash

        values = {name: getattr(self, name) for name in STAGE_FIELDS[stage]}
        if stage == "inject" and self.inject_radius:  # absent when 0, so earlier runs keep their hashes
            values.update(inject_radius=self.inject_radius, inject_targets=list(self.targets))
        if stage == "inject" and self.layers:  # likewise absent when every block trains
            values.update(layers=list(self.layers), inject_targets=list(self.targets))
        if stage == "widen" and self.widen_under_clip:  # absent for the published layout
            values.update(widen_under_clip=self.widen_under_clip)
        if stage == "dual" and self.widen_rounding != "all":  # absent for the default, so earlier runs keep theirs
            values.update(widen_rounding=self.widen_rounding)
        if stage == "box" and self.constraint != "box":  # absent for exact boxes, so earlier runs keep their hashes
            values.update(constraint=self.constraint)
        if stage == "verify" and self.pruning:  # absent for formats, so earlier runs keep their hashes
            values.update(llmc_verify=self.llmc_verify)
        if stage == "inject" and self.responses != "corpus":
            values.update(responses=self.responses)
        for name in ("train_file", "clean_file"):
            if values.get(name):
                values[name + "_sha256"] = hashlib.sha256(Path(values[name]).read_bytes()).hexdigest()
        return config_hash({"stage": stage, "before": before, **values})

    def to_json(self) -> dict:
        return {**asdict(self), "targets": list(self.targets), "outlier_layers": list(self.outlier_layers),
                "layers": list(self.layers), "widen_matrices": list(self.widen_matrices)}


def config_fields() -> list[str]:
    return [f.name for f in fields(AttackConfig)]
