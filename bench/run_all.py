"""Run every benchmark in bench/ (each `bench_*.py`, in name order), one process each.

This is `make bench`. Each script prints its own figures; a script that fails is reported
and the others still run, and the exit status says whether all of them finished.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        started = time.perf_counter()
        returncode = subprocess.call([sys.executable, str(script)], cwd=BENCH_DIR.parent)
        took = time.perf_counter() - started
        if returncode != 0:
            failed.append(script.name)
            print(f"--- {script.name} failed (exit {returncode}) after {took:.0f}s", flush=True)
        else:
            print(f"--- {script.name} finished in {took:.0f}s", flush=True)
    if failed:
        print(f"\n{len(failed)} of {len(scripts)} benchmarks failed: {', '.join(failed)}")
        return 1
    print(f"\nall {len(scripts)} benchmarks finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
