"""The layers of ``src/lettre`` point one way, and no modules import each other in a cycle.

Every ``import`` of a lettre module is counted, wherever it stands: at the
top, inside a function, or under ``if TYPE_CHECKING:``. A module may import
from its own layer or a lower one; the import graph of lettre's modules has
no cycle (a package's ``__init__`` re-exporting its modules is the one
allowed edge back, from the package to what it contains).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Bottom to top. A module belongs to the first entry that is its name or a
#: package containing it.
LAYERS: list[list[str]] = [
    ["lettre._slots", "lettre._loops", "lettre.errors", "lettre.results"],
    ["lettre.address", "lettre.envelope"],
    ["lettre.signing", "lettre.hooks", "lettre.message"],
    ["lettre.dkim"],
    ["lettre.protocol"],
    ["lettre.smtp"],
    ["lettre.dns"],
    ["lettre.transports"],
    [
        "lettre.testing",
        "lettre.sync",
        "lettre.oneshot",
        "lettre.django",
        "lettre.celery",
        "lettre.otel",
    ],
    ["lettre.__main__", "lettre"],
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "lettre").rglob("*.py"))}


def layer_of(name: str) -> int:
    best: tuple[int, int] | None = None  # (length of the matching prefix, layer)
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            matches = name == prefix or name.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{name} has no layer: add it to LAYERS in {__file__}")
    return best[1]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The lettre modules that ``name`` imports, resolved to modules in ``known``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            module = target
            while module and module not in known:
                module = module.rpartition(".")[0]
            if module.startswith("lettre") and module != name:
                found.add(module)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    edges = {name: imports_of(name, path, known) for name, path in found.items()}
    # A package re-exporting its own modules is not a dependency of theirs.
    for name, targets in edges.items():
        edges[name] = {t for t in targets if not (name and t.startswith(name + "."))} | {
            t for t in targets if t.startswith(name + ".") and t in known
        }
    return edges


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer_of(name)


def test_no_module_imports_from_a_layer_above() -> None:
    upward = [
        f"{name} (layer {layer_of(name)}) imports {target} (layer {layer_of(target)})"
        for name, targets in graph().items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(name)
    ]
    assert upward == []


#: Cycles still to be broken, each as the set of its modules: the entry
#: points ``Message.builder()`` and ``Message.to_email_message()``, which
#: import their modules on first use. The list may only shrink: a cycle
#: that is gone must be removed from it, and a new one fails the test.
KNOWN_CYCLES: list[frozenset[str]] = [
    frozenset({"lettre.message.builder", "lettre.message.message"}),
    frozenset({"lettre.message.message", "lettre.message.stdlib"}),
]


def cycles_of(edges: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first walk of ``edges`` meets (each closes on its first module)."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return cycles


def module_cycles() -> list[list[str]]:
    edges = graph()
    # A package's __init__ importing its own modules is the allowed way down;
    # a module importing its own package's __init__ is not counted as a loop.
    for name in list(edges):
        edges[name] = {t for t in edges[name] if not (name.startswith(t + ".") and t in edges)}
    return cycles_of(edges)


def test_no_new_import_cycles() -> None:
    new = [cycle for cycle in module_cycles() if frozenset(cycle) not in KNOWN_CYCLES]
    assert new == []


def test_the_known_cycles_still_exist() -> None:
    found = {frozenset(cycle) for cycle in module_cycles()}
    gone = [sorted(cycle) for cycle in KNOWN_CYCLES if cycle not in found]
    assert gone == [], "remove these from KNOWN_CYCLES: they are broken now"


def test_the_cycle_walk_finds_a_loop_of_three() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles_of(edges) == [["a", "b", "c", "a"]]
    assert cycles_of({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("lettre.protocol.replies", 4),
        ("lettre.smtp.pool", 5),
        ("lettre.errors", 0),
        ("lettre.dns.mx", 6),
        ("lettre.transports.mx", 7),
        ("lettre", 9),
    ],
)
def test_layer_lookup(name: str, expected: int) -> None:
    assert layer_of(name) == expected


def test_the_walk_sees_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    source = tmp_path / "lettre" / "example.py"
    source.parent.mkdir()
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from lettre.smtp.pool import SmtpPool\n"
        "def f():\n"
        "    import lettre.transports.base\n"
        "    from . import errors\n",
        encoding="utf-8",
    )
    known = {"lettre.smtp.pool", "lettre.transports.base", "lettre.errors", "lettre.example"}
    assert imports_of("lettre.example", source, known) == {
        "lettre.smtp.pool",
        "lettre.transports.base",
        "lettre.errors",
    }
