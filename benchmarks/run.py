"""Run every benchmark script in this directory (``bench_*.py``), one after another.

Usage::

    python benchmarks/run.py                    # every bench_*.py present
    python benchmarks/run.py bench_smtp.py      # only these
    python benchmarks/run.py --timeout 900

Each script runs in its own process with the same interpreter and is
stopped if it runs longer than ``--timeout`` seconds. The exit status is
non-zero when any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts(selected: list[str]) -> list[Path]:
    found = sorted(HERE.glob("bench_*.py"))
    if not selected:
        return found
    wanted = {Path(name).name for name in selected}
    unknown = wanted - {path.name for path in found}
    if unknown:
        raise SystemExit(f"no such benchmark: {', '.join(sorted(unknown))}")
    return [path for path in found if path.name in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run lettre's benchmarks")
    parser.add_argument("scripts", nargs="*", help="bench_*.py files to run (default: all)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per script, seconds")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for script in scripts(args.scripts):
        print(f"\n## {script.name}\n", flush=True)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, str(script)], cwd=HERE.parent, timeout=args.timeout, check=False
            )
            status = proc.returncode
        except subprocess.TimeoutExpired:
            status = -1
            print(f"{script.name}: stopped after {args.timeout:g} s", flush=True)
        took = time.monotonic() - started
        print(f"\n({script.name}: exit status {status}, {took:.0f} s)", flush=True)
        if status != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
