"""Run the quick benchmarks in one go (``make bench``); each prints ratios against a baseline timed in the
same run.  The long ones (attack, defence matrix, 1B-parameter scan) are run on their own: see README."""

import subprocess
import sys

QUICK = (
    ["bench/bench_formats.py", "--size", "2048", "--repeats", "2"],
    ["bench/bench_audit.py"],
    ["bench/bench_scan.py", "--params", "2e8"],
)

if __name__ == "__main__":
    failed = 0
    for args in QUICK:
        print(f"== {' '.join(args)}", flush=True)
        failed |= subprocess.call([sys.executable, *args])
    sys.exit(1 if failed else 0)
