"""Summarise a mutmut run per module: mutants, killed, survived, score.

Run after ``mutmut run`` (``make mutation`` does both). Reads the ``.meta`` files that mutmut
writes under ``mutants/``; a mutant counts as killed when a test failed or timed out on it.

    python tools/mutation_report.py            # the table, in Markdown
    python tools/mutation_report.py --survivors  # also the names of the surviving mutants
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3, 36, 24, -24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def module_of(meta: Path, root: Path) -> str:
    """``mutants/src/lettre/protocol/sasl/plain.py.meta`` -> ``protocol/sasl/plain.py``."""
    relative = meta.relative_to(root / "src" / "lettre").as_posix()
    return relative.removesuffix(".meta")


def main(argv: list[str]) -> int:
    root = Path("mutants")
    metas = sorted((root / "src").rglob("*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutation` first", file=sys.stderr)
        return 1
    rows: list[tuple[str, Counter[str]]] = []
    survivors: list[str] = []
    total: Counter[str] = Counter()
    for meta in metas:
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        if not codes:
            continue
        counts: Counter[str] = Counter()
        for name, code in codes.items():
            if code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts["survived"] += 1
                survivors.append(name)
            elif code in NO_TESTS:
                counts["no tests"] += 1
                survivors.append(name)
            else:
                counts["not checked"] += 1
            counts["mutants"] += 1
        rows.append((module_of(meta, root), counts))
        total.update(counts)
    print("| module | mutants | killed | survived | no tests | not checked | score |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for module, counts in [*rows, ("**all**", total)]:
        checked = counts["mutants"] - counts["not checked"]
        score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
        print(
            f"| {module} | {counts['mutants']} | {counts['killed']} | {counts['survived']} "
            f"| {counts['no tests']} | {counts['not checked']} | {score} |"
        )
    if "--survivors" in argv:
        print()
        for name in survivors:
            print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
