"""Imports every verb module so that each registers itself on ``compsec.cli.main.app``.

Add one line per verb module; keep verb modules thin (parse options, call the library, print, exit code).
"""
from compsec.cli import (  # noqa: F401  (each module registers its verb)
    attack_cmd,
    audit_cmd,
    check_cmd,
    compare_cmd,
    defend_cmd,
    demo_cmd,
    diff_cmd,
    distill_cmd,
    garak_cmd,
    harden_cmd,
    heads_cmd,
    judges_cmd,
    layers_cmd,
    lm_eval_cmd,
    manifest_cmd,
    provenance_cmd,
    prune_cmd,
    quantize_cmd,
    report_cmd,
    scan_cmd,
    scan_many_cmd,
    search_cmd,
    sign_cmd,
    survival_cmd,
    tiny_cmd,
)
