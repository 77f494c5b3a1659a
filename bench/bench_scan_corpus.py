"""Score ``compsec scan`` on the labelled corpus of ``bench/scan_corpus.py``: TPR, FPR and AUROC per attack kind.

    .venv/bin/python bench/bench_scan_corpus.py [--root DIR] [--json FILE] [--sample-weights N] [--build]

Every artifact is scanned with the default :class:`~compsec.scan.ScanConfig` (every weight examined;
``--sample-weights N`` scans a random sample instead; ``--label benign`` scores the benign artifacts only).  At the default threshold (the verdict): TPR per attack kind = share of that kind's
artifacts called ``suspicious``; FPR = share of benign artifacts called ``suspicious`` (all benign families
pooled, and per family).  AUROC per kind ranks the model ``score`` (max -log10 of the BH-adjusted p-value) of
that kind's artifacts against every benign one (ties count one half).  Attacks whose fp32 model still shows the
behaviour (keyword rate >= 50 %, e.g. target int8) failed their stealth goal: reported as ``stealth_failed``;
attacks whose target format does not show it either (< 50 %) planted nothing: ``attack_failed``.
Prints a table and writes the JSON (default ``<root>/results.json``).

Measured 2026-12-03 with the quantized kinds of ``bench/scan_corpus_quantized.py`` (27 benign, 29 attacked
built; the older attacked artifacts not built in this run; 235 s on 2 shared cores): FPR 0/27 (highest benign score
1.7, random-s4; GGUF Q4_K_M/Q6_K/Q4_0 of the tiny assistant and SmolLM2 Q4_K_M, pre-quantized nf4/fp4/int8/GPTQ
W4A16/FP8 folders of the tiny assistant and SmolLM2 in nf4 all clean, score 0).  TPR 1.00 / AUROC 1.00:
``widen-gap`` (3, safetensors), ``gguf-widen-gap`` (6: Q4_K_M, Q6_K, Q4_0 of outliers in 100 % / 10 % of the
blocks; collapsed-blocks), ``prequant-widen-gap`` (8: bitsandbytes nf4 / int8, llm-compressor GPTQ W4A16 / FP8;
collapsed-blocks, outlier-blocks for FP8, scale-outliers at 10 %), ``gguf-widen-gap-x8`` / ``-x4`` (2 each),
``prequant-widen-gap-x8`` (2), ``attack-error-interval-cheap`` (2 seeds; error-interval and position-spike on q4_k;
fp32 / q4_k keyword 0-10 % / 60-80 %).  Missed: ``prequant-widen-gap-x4`` TPR 0.50, AUROC 0.66 (int8 at x4 collapses
nothing: 4 % zero codes), and the full-precision ``widen-gap-100-x8`` / ``-x4`` (TPR 0, AUROC 0.89, score 0.4):
the fp scanner's block-outlier test does not see outliers x8 / x4 in every block.

Measured 2026-12-03 after ``sigma-outliers`` (a 32-block's abs-max >= 8 MAD sigmas; 57 artifacts, 138 s on 2
shared cores): FPR 0/27 (highest benign score 1.6, random-s4, as before); ``widen-gap-100-x8`` / ``-x4`` now TPR 1
(sigma-outliers, score 300), and the new kind ``widen-gap-under-clip`` (the adaptive attacker's layout at k = 10,
every block's abs-max at 9.9 sigma) TPR 1 by sigma-outliers; ``prequant-widen-gap-x4`` unchanged (0.50).

Measured 2026-12-03 after ``widen-gap-ratio`` (>= 50 % of a tensor's 32-blocks with largest |w| >= 3x the second;
57 artifacts, 258 s on 2 shared cores; 365 s for the run before it at higher load): FPR 0/27 (highest benign
score 1.6, random-s4, unchanged; every GGUF and pre-quantized benign artifact still 0);
``prequant-widen-gap-x4`` TPR 0.50 -> 1.00, AUROC 0.65 -> 1.00 (the LLM.int8 folder now flagged by
widen-gap-ratio alone, score 300); every other kind unchanged (TPR 1.00, AUROC 1.00).

Measured 2026-12-03 at full coverage (the new default: every weight, 8 formats with q4_k/q5_k/q6_k, per-row
edge-mass test added), ``--label benign`` on the 17 benign artifacts that build in minutes (tiny fp32/fp16/bf16,
3 fine-tunes, 7 random inits, 4 noise-hardened; the retrained tiny variants and SmolLM2-135M not built): FPR
0/17, highest benign score 1.2 (suspicious needs BH-adjusted p <= 1e-3, i.e. score >= 3); 32-195 s per artifact
on 2 shared cores at load ~15.  The attacked artifacts were not re-scored in this run.

Measured 2026-11-25 (the old default ScanConfig, 4096 weights per tensor; 18 benign, 39 attacked artifacts; 3 seeds per
attack kind, 6 outlier artifacts; the same figures with ``--sample-weights 0``): FPR 0/18 (tiny assistant fp32/fp16/bf16, 3 fine-tunes, 7 random inits of two
sizes, 4 noise-hardened, SmolLM2-135M clean with a Q4_1 provenance note); TPR 1.00 and AUROC 1.00 for every kind:
attacks against nf4 / fp4 / int8 / q4_0 (and nf4 saved as bf16; int8 also with constrained injection r = 4,
which keeps fp32 at 0 % and int8 at 70-80 %), adaptive attackers with boxes shrunk by 1 %,
10 %, 20 % (edge-mass at 1 %, edge-depletion and edge-band beyond), randomised margins in [0, 10 %] and
[0, 20 %] (edge-band only), outlier injection.  The int8 attack fails its stealth goal at every seed (fp32 keyword
rate 80-90 %).  Before the edge-depletion and edge-band tests the adaptive attackers at 10 % and 20 % got through
(TPR 0, AUROC 0.46), and after edge-depletion alone the randomised ones did (TPR 0, AUROC 0.47).

Measured again 2026-11-25 with q4_k, q5_k and q6_k in the default formats (fixed-scale boxes; 21 benign, 49
attacked artifacts; 21 s for all, 425 s with ``--sample-weights 0``, which gives the same TPR and FPR): FPR 0/21 (highest benign score 0.73; suspicious means BH-adjusted p <= 1e-3,
score >= 3), now including the tiny assistant retrained at seeds 1 and 2 and at hidden size 512; TPR 1.00 and
AUROC 1.00 for every kind as before, the nf4 attack now 6 artifacts (3 seeds on the tiny assistant + one on each
retrained variant).  K-quant target (``bench/kquant_attack.py``): ``attack-q4_k`` (scale-keeping, byte-identical
q4_k, fp32 / q4_k keyword 0-10 % / 90-100 %, 3 seeds) TPR 1.00, AUROC 1.00 (edge-mass on q4_k alone, score
59-71; clean without K-quants in the scan); ``attack-q4_k-rescaled`` (plain PGD, 3 seeds) TPR 0, AUROC 0.57,
every one ``attack_failed`` (keyword 0 % in q4_k too); ``adaptive-q4_k-0.1`` (scale-keeping inside boxes shrunk by
10 %, seed 0, fp32 / q4_k 0 / 90 %) got through (TPR 0, AUROC 0.38: no edge-depletion test on K-quants) until the
position-spike test: then TPR 1.00, AUROC 1.00 (score 92), FPR still 0/21 (highest benign score 0.63, 27 s for all;
the same TPR / FPR with ``--sample-weights 0``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_corpus import build_corpus, corpus_root


def scan_artifact(label: dict, sample_weights: int | None) -> dict:
    """Scan one artifact; returns its label with the verdict, score, detectors that fired and provenance notes."""
    from compsec.scan import ScanConfig, scan_path

    cfg = ScanConfig() if sample_weights is None else ScanConfig(sample_weights=sample_weights)
    report = scan_path(label["model_dir"], cfg)
    tamper = [f for f in report.findings if f.severity != "info"]
    return {**{k: v for k, v in label.items() if k != "model_dir"},
            "verdict": report.verdict, "score": report.score, "seconds": round(report.seconds, 2),
            "detectors": sorted({f"{f.detector}:{f.format}" for f in tamper}), "findings": len(tamper),
            "provenance": sorted({f.format for f in report.findings if f.detector == "grid-provenance"}),
            "stealth_failed": _stealth_failed(label), "attack_failed": _attack_failed(label)}


def _stealth_failed(label: dict) -> bool:
    rates = label.get("keyword_rate") or {}
    return label["label"] == "attacked" and rates.get("fp32", 0.0) >= 0.5


def _attack_failed(label: dict) -> bool:
    """The target format does not show the behaviour either (keyword rate < 50 %): nothing was planted."""
    rates, target = label.get("keyword_rate") or {}, label.get("target")
    return label["label"] == "attacked" and target in rates and rates[target] < 0.5


def auroc(positive: list[float], negative: list[float]) -> float | None:
    """P(score of a positive > score of a negative), ties counting one half; None without both classes."""
    if not positive or not negative:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positive for n in negative)
    return wins / (len(positive) * len(negative))


def summarise(rows: list[dict]) -> dict:
    """Per attack kind (TPR, AUROC, n, stealth failures) and per benign family (FPR, n), plus pooled FPR."""
    benign = [r for r in rows if r["label"] == "benign"]
    negatives = [r["score"] for r in benign]
    fpr = sum(r["verdict"] == "suspicious" for r in benign) / len(benign) if benign else None
    kinds: dict[str, dict] = {}
    for kind in sorted({r["kind"] for r in rows if r["label"] == "attacked"}):
        members = [r for r in rows if r["label"] == "attacked" and r["kind"] == kind]
        kinds[kind] = {"n": len(members), "tpr": sum(r["verdict"] == "suspicious" for r in members) / len(members),
                       "fpr": fpr, "auroc": auroc([r["score"] for r in members], negatives),
                       "stealth_failed": sum(r["stealth_failed"] for r in members),
                       "attack_failed": sum(r["attack_failed"] for r in members)}
    families = {}
    for family in sorted({r["kind"] for r in benign}):
        members = [r for r in benign if r["kind"] == family]
        families[family] = {"n": len(members), "fpr": sum(r["verdict"] == "suspicious" for r in members) / len(members)}
    return {"fpr_pooled": fpr, "n_benign": len(benign), "attack_kinds": kinds, "benign_families": families}


def print_table(rows: list[dict], summary: dict) -> None:
    print(f"{'artifact':36} {'label':9} {'verdict':10} {'score':>7} {'s':>6}  detectors / provenance")
    for r in rows:
        extra = ", ".join(r["detectors"][:4]) or ("provenance " + ",".join(r["provenance"]) if r["provenance"] else "")
        print(f"{r['name']:36} {r['label']:9} {r['verdict']:10} {r['score']:7.1f} {r['seconds']:6.1f}  {extra}")
    print(f"\nbenign: n={summary['n_benign']}  FPR={summary['fpr_pooled']:.3f}")
    if not summary["attack_kinds"]:
        return
    print(f"{'attack kind':28} {'n':>3} {'TPR':>6} {'FPR':>6} {'AUROC':>6}  stealth-failed  attack-failed")
    for kind, s in summary["attack_kinds"].items():
        print(f"{kind:28} {s['n']:3d} {s['tpr']:6.2f} {s['fpr']:6.2f} {s['auroc']:6.2f}  {s['stealth_failed']:14d}  "
              f"{s['attack_failed']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="corpus folder (default: $COMPSEC_CACHE/scan-corpus)")
    parser.add_argument("--json", help="output JSON (default: <root>/results.json)")
    parser.add_argument("--sample-weights", type=int, default=None, help="override ScanConfig.sample_weights")
    parser.add_argument("--label", choices=("benign", "attacked"), help="score only artifacts with this label")
    parser.add_argument("--build", action="store_true", help="build missing artifacts first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = corpus_root(args.root)
    labels = build_corpus(root) if args.build else [json.loads(p.read_text(encoding="utf-8"))
                                                    for p in sorted(root.glob("*/label.json"))]
    labels = [label for label in labels if args.label in (None, label["label"])]
    if not labels:
        raise SystemExit(f"no artifacts under {root}; run bench/scan_corpus.py first (or pass --build)")
    started = time.perf_counter()
    rows = [scan_artifact(label, args.sample_weights) for label in labels]
    summary = summarise(rows)
    print_table(rows, summary)
    out = Path(args.json) if args.json else root / "results.json"
    seconds = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps({"sample_weights": args.sample_weights, "seconds": seconds,
                               "summary": summary, "artifacts": rows}, indent=1), encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
