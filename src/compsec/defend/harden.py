"""``compsec harden``: optional outlier clipping, then seeded weight noise, on a model's quantizable weights.

Only the weights the target formats would quantize (architecture table, :mod:`compsec.models.linear`) are
touched: noise elsewhere cannot change a deployment's codes and only costs accuracy.  The output folder carries
a provenance record (operation ``"harden"``) whose parameters hold the noise spec, ``c``, the target formats,
the clipping settings and the sigma used for every tensor; its ``seed`` is the noise seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from compsec.defend.clip import RATIO_THRESHOLD, ROBUST_K, clip_outliers_
from compsec.defend.noise import DEFAULT_C, add_noise_, code_change_fraction, parse_noise, sigmas_for
from compsec.errors import InputError


@dataclass(frozen=True)
class HardenConfig:
    """``noise``: ``"auto"`` or a sigma (0 disables); ``c``: auto multiplier; ``formats``: target format names
    (calibration of ``auto``, clipping layouts, code-change report); ``clip_outliers``: clip before noise;
    ``group_clip``: ``"zero"`` / ``"divide"`` runs "Widening the Gap"'s per-group clipping first
    (:mod:`compsec.defend.group_clip`), None skips it."""

    noise: str | float = "auto"
    formats: tuple[str, ...] = ("nf4", "int8")
    seed: int = 0
    c: float = DEFAULT_C
    clip_outliers: bool = False
    clip_ratio: float = RATIO_THRESHOLD
    clip_k: float = ROBUST_K
    group_clip: str | None = None

    def __post_init__(self) -> None:
        from compsec.defend.group_clip import MODES

        if self.group_clip is not None and self.group_clip not in MODES:
            raise InputError(f"--group-clip {self.group_clip!r} is not one of {', '.join(MODES)}")
        object.__setattr__(self, "noise", parse_noise(self.noise))
        from compsec import formats

        for name in self.formats:
            formats.get(name)

    def resolved_formats(self) -> list:
        from compsec import formats

        return [formats.get(name) for name in self.formats]


@dataclass
class HardenReport:
    """What :func:`harden_model` did: sigma and changed-element fraction per tensor, clipped blocks per tensor,
    and the fraction of each target format's codes that changed (over all hardened weights)."""

    sigmas: dict[str, float] = field(default_factory=dict)
    changed: dict[str, float] = field(default_factory=dict)
    clipped_blocks: dict[str, int] = field(default_factory=dict)
    group_clipped: dict[str, int] = field(default_factory=dict)
    codes_changed: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def hardened_names(model, formats: list) -> list[str]:
    """Quantizable weights of ``model`` that at least one target format can store (all of them if none given)."""
    from compsec.models.linear import quantizable_weights

    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    names = [q.name for q in quantizable_weights(model) if q.name in shapes]
    return [n for n in names if not formats or any(f.supports(shapes[n]) for f in formats)]


def harden_model(model, config: HardenConfig) -> HardenReport:
    """Clip (if asked) and add noise to ``model``'s quantizable weights in place; see :class:`HardenReport`."""
    fmts = config.resolved_formats()
    params = dict(model.named_parameters())
    names = hardened_names(model, fmts)
    if not names:
        raise InputError("the model has no quantizable weight the target formats support; check --formats")
    before = {n: params[n].detach().cpu().clone() for n in names}
    report = HardenReport()
    if config.group_clip:
        from compsec.defend.group_clip import group_clip_model_

        report.group_clipped = group_clip_model_(model, config.group_clip, names=names)
    if config.clip_outliers:
        report.clipped_blocks = clip_outliers_(params, names, fmts, config.clip_ratio, config.clip_k)
    report.sigmas = sigmas_for({n: params[n].detach() for n in names}, config.noise, fmts, config.c)
    report.changed = add_noise_(params, report.sigmas, config.seed)
    report.codes_changed = _codes_changed(before, params, fmts)
    return report


def _codes_changed(before: dict, params: dict, fmts: list) -> dict[str, float]:
    result = {}
    for fmt in fmts:
        pairs = [(w, params[n].detach()) for n, w in before.items() if fmt.supports(tuple(w.shape))]
        total = sum(w.numel() for w, _ in pairs)
        changed = sum(code_change_fraction(w, p, fmt) * w.numel() for w, p in pairs)
        result[fmt.name] = round(changed / total, 6) if total else 0.0
    return result


def provenance_params(config: HardenConfig, report: HardenReport) -> dict:
    """The JSON parameters recorded in the output's provenance (sigma per tensor included)."""
    return {"noise": config.noise, "c": config.c, "formats": list(config.formats),
            "clip_outliers": config.clip_outliers, "clip_ratio": config.clip_ratio, "clip_k": config.clip_k,
            "sigma_per_tensor": report.sigmas, "clipped_blocks": report.clipped_blocks,
            **({"group_clip": config.group_clip, "group_clipped": report.group_clipped} if config.group_clip else {})}


def harden_folder(source, out_dir, config: HardenConfig, device: str = "cpu") -> HardenReport:
    """Load ``source``, harden it, save to ``out_dir`` in the source's dtype and record provenance."""
    from compsec.integrity.provenance import record_provenance
    from compsec.models.io import load_model, save_model

    model, tokenizer = load_model(source, device=device)
    report = harden_model(model, config)
    info = {"compsec_artifact": "hardened", "noise": str(config.noise), "formats": ",".join(config.formats)}
    save_model(model, tokenizer, out_dir, metadata=info)
    record_provenance(out_dir, source, "harden", provenance_params(config, report), seed=config.seed)
    (Path(out_dir) / "harden.json").write_text(_report_text(report), encoding="utf-8")
    return report


def _report_text(report: HardenReport) -> str:
    import json

    return json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n"
