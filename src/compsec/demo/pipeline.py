"""``run_demo``: the main job, in resumable steps, each writing into its own sub-folder of ``out``.

1. ``tiny``            train or load the tiny assistant (cached);
2. ``audit-benign``    audit it against nf4, int8, fp4, q4_0, int2-rtn and prune-50;
3. ``attack``          build a quantization-conditioned content-injection model (target nf4);
   ``audit-attacked``  audit the attacked model: clean in fp32, injecting once quantized;
4. ``scan-*.json``     scan the benign and the attacked weights (clean vs suspicious, with reasons);
5. ``hardened``        harden the attacked model with calibrated noise; ``audit-hardened`` re-audits it;
   ``survival``        backdoor survival on the digits classifier (BadNets patch) under each compression;
6. ``defence``         the defence matrix on the attack: none, noise, clipping, mixed precision, and an adaptive
                       attacker who shrinks the box to survive the noise;
7. ``index.html``      links every report; :func:`run_demo` returns the key numbers for the terminal.

Every step resumes: audits and the attack resume from their logs, the other steps skip finished outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENIGN_VARIANTS = ("nf4", "int8", "fp4", "q4_0", "int2-rtn", "prune-50")
ATTACK_TARGETS = ("nf4",)  # the int8 box is so narrow that repair inside nf4 ∩ int8 keeps fp32 malicious
ATTACKED_VARIANTS = ("nf4", "int8", "fp4")  # only the target should inject


@dataclass(frozen=True)
class DemoConfig:
    """``probe_limit`` probes per set per audit; attack step counts are the attack's defaults when None."""

    out: str
    device: str = "cpu"
    probe_limit: int = 24
    batch_size: int = 24
    max_new_tokens: int = 40
    keyword: str = "McDonald's"
    seed: int = 0


def run_demo(config: DemoConfig, say: Callable[[str], None] = print) -> dict:
    """Run (or resume) every step and return the headline numbers (also written to ``out/demo.json``)."""
    import compsec.defend.variants
    import compsec.prune.variants  # noqa: F401  (prune-* audit variants)
    from compsec.demo.index import write_index
    from compsec.tiny.assistant import tiny_assistant_dir

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    say("[1/7] tiny assistant: train or load (cached)")
    tiny = tiny_assistant_dir()
    say("[2/7] audit the tiny assistant against " + ", ".join(BENIGN_VARIANTS))
    benign = _audit(config, tiny, out / "audit-benign", BENIGN_VARIANTS, ("refusal", "over-refusal", "utility"))
    say("[3/7] attack: inject, box, PGD repair, verify, measure (target " + ", ".join(ATTACK_TARGETS) + ")")
    attack = _attack(config, out / "attack")
    attacked_dir = out / "attack" / "model"
    attacked = _audit(config, attacked_dir, out / "audit-attacked", ATTACKED_VARIANTS, ("injection", "refusal"))
    say("[4/7] scan the benign and the attacked weights")
    scans = {"benign": _scan(tiny, out / "scan-benign.json"), "attacked": _scan(attacked_dir, out / "scan-attacked.json")}
    say("[5/7] harden the attacked model (noise auto), re-audit it; backdoor survival on digits")
    hardened_dir = _harden(attacked_dir, out / "hardened", config.seed)
    hardened = _audit(config, hardened_dir, out / "audit-hardened", ATTACKED_VARIANTS, ("injection", "refusal"))
    _survival(out / "survival", config.seed)
    say("[6/7] defence matrix on the attack (none, noise, clip, mixed precision; adaptive attacker)")
    defence = _defence(config, out / "attack", out / "defence")
    say("[7/7] write index.html")
    headline = _headline(benign, attack, attacked, scans, hardened, config.keyword)
    headline["defence_malicious_rate"] = _defence_lines(defence)
    (out / "demo.json").write_text(json.dumps(headline, indent=1), encoding="utf-8")
    write_index(out, headline)
    return headline


def _audit(config: DemoConfig, model_dir: Path, out: Path, variants, probes) -> dict:
    from compsec.audit.config import AuditConfig
    from compsec.audit.runner import run_audit

    audit = AuditConfig(model=str(model_dir), out=str(out), variants=tuple(variants), probes=tuple(probes),
                        limit=config.probe_limit, max_new_tokens=config.max_new_tokens,
                        batch_size=config.batch_size, device=config.device, keywords=(config.keyword,),
                        seed=config.seed)
    return run_audit(audit).summary


def _attack(config: DemoConfig, out: Path) -> dict:
    from compsec.attack.config import AttackConfig
    from compsec.attack.pipeline import run_attack

    attack = AttackConfig(out=str(out), targets=ATTACK_TARGETS, keyword=config.keyword, seed=config.seed,
                          ablation=False, probe_limit=config.probe_limit, device=config.device)
    return run_attack(attack)


def _defence(config: DemoConfig, attack_dir: Path, out: Path) -> dict:
    from compsec.defend.matrix import MatrixConfig, run_matrix

    return run_matrix(MatrixConfig(attack_dirs=(str(attack_dir),), out=str(out), seed=config.seed,
                                   probe_limit=config.probe_limit, max_new_tokens=config.max_new_tokens,
                                   device=config.device))


def _scan(model_dir: Path, out: Path) -> dict:
    from compsec.scan.runner import scan_path

    report = scan_path(model_dir).to_dict()
    out.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report


def _harden(model_dir: Path, out: Path, seed: int) -> Path:
    from compsec.defend.harden import HardenConfig, harden_folder

    if not (out / "config.json").is_file():
        harden_folder(model_dir, out, HardenConfig(noise="auto", formats=ATTACK_TARGETS, seed=seed))
    return out


def _survival(out: Path, seed: int) -> None:
    from compsec.survival.table import DEFAULT_COMPRESSIONS, run_survival, write_survival

    if not (out / "survival.json").is_file():
        rows = run_survival("digits", list(DEFAULT_COMPRESSIONS), seed, "cpu", None)
        write_survival(out, rows, {"fixture": "digits", "compressions": list(DEFAULT_COMPRESSIONS), "seed": seed})


def _defence_lines(defence: dict) -> dict:
    """Per attack row, one line: each defence with the malicious rate in fp32 and in the target formats."""
    lines = {}
    for row, cells in defence.get("headline", {}).items():
        parts = [f"{d} " + "/".join(f"{100 * v:.0f}%" for v in cell["malicious"].values()) for d, cell in cells.items()]
        formats = "/".join(next(iter(cells.values()))["malicious"]) if cells else ""
        lines[row] = f"({formats}) " + ", ".join(parts)
    return lines


def _rates(summary: dict, key: str) -> dict:
    return {name: v.get(key) for name, v in summary.get("variants", {}).items()}


def _headline(benign, attack, attacked, scans, hardened, keyword: str) -> dict:
    return {
        "keyword": keyword,
        "benign_refusal_rate": _rates(benign, "refusal_rate"),
        "benign_over_refusal_rate": _rates(benign, "over_refusal_rate"),
        "benign_utility_accuracy": _rates(benign, "utility_accuracy"),
        "benign_kl_to_original": _rates(benign, "kl_to_original"),
        "benign_findings": benign.get("findings", {}),
        "attack_requantization_identical": attack.get("requantization_identical"),
        "attacked_keyword_rate": _rates(attacked, "keyword_rate"),
        "hardened_keyword_rate": _rates(hardened, "keyword_rate"),
        "scan_verdicts": {name: scan["verdict"] for name, scan in scans.items()},
        "scan_suspicious_findings": {name: sum(f["severity"] == "suspicious" for f in scan["findings"])
                                     for name, scan in scans.items()},
    }
