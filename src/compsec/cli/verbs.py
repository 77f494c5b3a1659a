"""Imports every verb module so that each registers itself on ``compsec.cli.main.app``.

Add one line per verb module; keep verb modules thin (parse options, call the library, print, exit code).
"""
from compsec.cli import audit_cmd, judges_cmd, report_cmd  # noqa: F401
from compsec.cli import manifest_cmd  # noqa: F401
from compsec.cli import scan_cmd  # noqa: F401
from compsec.cli import diff_cmd  # noqa: F401
from compsec.cli import provenance_cmd  # noqa: F401
from compsec.cli import check_cmd  # noqa: F401
from compsec.cli import demo_cmd, tiny_cmd  # noqa: F401
from compsec.cli import attack_cmd  # noqa: F401
from compsec.cli import heads_cmd, prune_cmd  # noqa: F401
from compsec.cli import distill_cmd  # noqa: F401
from compsec.cli import harden_cmd  # noqa: F401
from compsec.cli import survival_cmd  # noqa: F401
from compsec.cli import quantize_cmd  # noqa: F401
from compsec.cli import defend_cmd  # noqa: F401
