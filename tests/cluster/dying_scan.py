"""A scan-many task that kills its worker process (``os._exit``) when its batch holds a source named ``die*``:
a segfault or an OOM kill, as the driver sees it.  Pickled by value, so Ray workers need not import the tests."""

from __future__ import annotations

import os

from compsec.cluster.task import scan_batch


def dying_scan(sources, run, known):
    if any(os.path.basename(source).startswith("die") for source in sources):
        os._exit(1)
    return scan_batch(sources, run, known)
