"""The API reference in docs/reference/ covers every public name, with docstrings.

Each page lists objects with mkdocstrings' ``::: identifier`` lines. A name
exported by ``lettre`` must appear there under its public path
(``::: lettre.SmtpTransport``), so a new public name cannot land
undocumented. The objects the reference renders, and their public members,
must each have a docstring (a dataclass field may be described in its class's
``Attributes:`` or ``Args:`` section instead, an override by its base class).
The last test builds the site and looks for each name's entry in the HTML.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lettre

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: (\S+)", re.MULTILINE)


def _directives() -> dict[str, str]:
    """Every ``::: identifier`` of the reference, with the page it is on."""
    found: dict[str, str] = {}
    for page in sorted(REFERENCE.glob("*.md")):
        for identifier in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            assert identifier not in found, f"{identifier}: {found[identifier]}, {page.name}"
            found[identifier] = page.name
    return found


def _import(identifier: str) -> Any:
    """The object an identifier names: the longest importable module, then attributes."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(identifier)


def test_directive_detection() -> None:
    text = "# Page\n\n::: lettre.Message\n\n    ::: not.a.directive\n::: lettre.smtp.SmtpClient\n"
    assert DIRECTIVE.findall(text) == ["lettre.Message", "lettre.smtp.SmtpClient"]


def test_every_public_name_is_in_the_reference() -> None:
    directives = _directives()
    missing = [name for name in lettre.__all__ if f"lettre.{name}" not in directives]
    assert not missing, f"add these to a page in docs/reference/: {missing}"


def test_every_reference_entry_imports() -> None:
    for identifier in _directives():
        assert _import(identifier) is not None, identifier


# ----------------------------------------------------------------- docstrings


def _handler_options() -> dict[str, Any]:
    """The options of mkdocstrings' Python handler in mkdocs.yml."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python: dict[str, Any] = plugin["mkdocstrings"]["handlers"]["python"]
            return {"paths": python.get("paths", []), **python.get("options", {})}
    raise AssertionError("mkdocs.yml configures no mkdocstrings plugin")


def _shown(name: str, filters: list[str]) -> bool:
    """Whether the handler's ``filters`` option lets a member named ``name`` through."""
    keep = True
    for pattern in filters:
        exclude = pattern.startswith("!")
        if re.search(pattern.removeprefix("!"), name):
            keep = not exclude
    return keep


@pytest.fixture(scope="module")
def griffe_objects() -> list[Any]:
    """The objects the reference renders, loaded the way mkdocstrings loads them."""
    griffe = pytest.importorskip("griffe")
    options = _handler_options()
    extensions = griffe.load_extensions(*(str(ROOT / ext) for ext in options["extensions"]))
    loader = griffe.GriffeLoader(
        search_paths=[str(ROOT / path) for path in options["paths"]],
        extensions=extensions,
        docstring_parser=griffe.Parser(options["docstring_style"]),
    )
    loader.load("lettre")
    loader.resolve_aliases(implicit=False, external=False)
    return [loader.modules_collection[identifier] for identifier in _directives()]


def _section_names(obj: Any, kinds: set[str]) -> set[str]:
    if obj is None or not obj.docstring:
        return set()
    names: set[str] = set()
    for section in obj.docstring.parse("google", warnings=False):
        if section.kind.value in kinds:
            names.update(item.name for item in section.value)
    return names


def _documented_elsewhere(obj: Any) -> bool:
    """A field described by its class, or a member its base class documents."""
    parent = obj.parent
    if obj.is_attribute and obj.name in _section_names(parent, {"attributes", "parameters"}):
        return True
    if parent is not None and parent.is_class:
        for base in parent.mro():
            member = base.members.get(obj.name)
            if member is not None and (member.docstring or _documented_elsewhere(member)):
                return True
    return False


def _undocumented(obj: Any, filters: list[str], seen: set[str]) -> Iterator[str]:
    obj = obj.final_target if obj.is_alias else obj
    if obj.path in seen:
        return
    seen.add(obj.path)
    if not obj.docstring and not _documented_elsewhere(obj):
        yield obj.path
    if obj.is_class:
        for name, member in obj.members.items():
            if not _shown(name, filters) or member.is_alias:
                continue
            yield from _undocumented(member, filters, seen)


def test_filter_semantics() -> None:
    assert _shown("send", ["!^_"])
    assert not _shown("_private", ["!^_"])
    assert not _shown("verb", ["!^_", "!^verb$"])


def test_the_reference_has_a_docstring_for_every_public_member(
    griffe_objects: list[Any],
) -> None:
    filters = _handler_options()["filters"]
    seen: set[str] = set()
    missing = [path for obj in griffe_objects for path in _undocumented(obj, filters, seen)]
    assert not missing, f"give these a docstring: {missing}"


# ----------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=True,
        timeout=300,
    )
    return out


def test_the_built_reference_has_an_entry_for_every_public_name(site: Path) -> None:
    directives = _directives()
    html = {
        page: (site / "reference" / page.removesuffix(".md") / "index.html").read_text("utf-8")
        for page in set(directives.values())
    }
    for identifier, page in directives.items():
        if identifier == "lettre.testing":  # the module's text only, without a heading
            continue
        assert f'id="{identifier}"' in html[page], f"{identifier} is not rendered on {page}"
    for name in lettre.__all__:
        assert f'id="lettre.{name}"' in html[directives[f"lettre.{name}"]], name
