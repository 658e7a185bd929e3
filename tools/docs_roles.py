"""A griffe extension for the API reference: lettre's docstrings as Markdown.

The docstrings are written to read well in ``help()`` and use two pieces of
reStructuredText that Markdown does not know:

- roles such as ``:class:`~lettre.errors.SmtpError``` or ``:meth:`send```:
  each becomes a link to the object's entry in the reference (resolved in the
  scope of the docstring's object, like Python names), shown as code; a target
  the reference does not render stays plain code, without a warning;
- a paragraph ending in ``::`` followed by an indented block: the block
  becomes a fenced code block (Python when it parses as Python);
- ``#:`` comments above an attribute (module constants, ``self.x = ...``)
  become the attribute's docstring, as Sphinx's autodoc reads them.

mkdocs loads it through the ``extensions`` option of mkdocstrings' Python
handler (see ``mkdocs.yml``).
"""

from __future__ import annotations

import ast
import html
import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?P<role>class|meth|func|attr|exc|data|mod|obj):`(?P<target>[^`\n]+)`")
CALLABLE_ROLES = frozenset({"meth", "func"})


def _resolve(obj: griffe.Object, target: str) -> str | None:
    """The canonical path of ``target`` as seen from ``obj``, or None."""
    head, _, rest = target.partition(".")
    path: str | None
    try:
        path = obj.resolve(head)
    except (griffe.NameResolutionError, KeyError, ValueError):
        path = None
    candidates = [f"{path}.{rest}" if rest else path] if path else []
    candidates.append(target)
    collection = obj.modules_collection
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            found = collection[candidate]
            return str(found.canonical_path)
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
    return None


def _role_to_html(obj: griffe.Object, match: re.Match[str]) -> str:
    target = match["target"].strip()
    short = target.startswith("~")
    target = target.lstrip("~")
    title = target.rsplit(".", 1)[-1] if short else target
    if match["role"] in CALLABLE_ROLES:
        title += "()"
    code = f"<code>{html.escape(title)}</code>"
    path = _resolve(obj, target)
    if path is None:
        return code
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _fence_literal_blocks(text: str) -> str:
    """Turn ``paragraph::`` + an indented block into ``paragraph:`` + a fenced block."""
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.rstrip()
        if not stripped.endswith("::"):
            out.append(line)
            index += 1
            continue
        indent = len(line) - len(line.lstrip())
        lead = stripped[:-2].rstrip()
        if lead.strip().lower() == "example":
            lead = line[:indent] + "For example:"
        elif lead.strip():
            lead += ":"
        out.append(lead)
        index += 1
        block: list[str] = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            block.append(lines[index])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        code = textwrap.dedent("\n".join(line for line in block)).strip("\n")
        try:
            ast.parse(code)
            language = "python"
        except SyntaxError:
            language = "text"
        prefix = " " * indent
        out.append("")
        out.append(f"{prefix}```{language}")
        out.extend(f"{prefix}{code_line}" if code_line else "" for code_line in code.split("\n"))
        out.append(f"{prefix}```")
        out.append("")
    return "\n".join(out)


def _comment_docstring(attr: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above an attribute's first line, if any."""
    if attr.lineno is None:
        return None
    lines = attr.module.lines
    index = attr.lineno - 2
    comment: list[str] = []
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        comment.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(comment) or None


class SphinxRolesToMarkdown(griffe.Extension):
    """Rewrites each docstring of the loaded package once it is fully loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        self._loader = loader
        self._rewrite(pkg, set())

    def _rewrite(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is None and obj.is_attribute:
            comment = _comment_docstring(obj)
            if comment is not None:
                obj.docstring = griffe.Docstring(
                    comment,
                    lineno=obj.lineno,
                    parent=obj,
                    parser=self._loader.docstring_parser,
                    parser_options=self._loader.docstring_options,
                )
        if obj.docstring is not None:
            text = obj.docstring.value
            if "::" in text:
                text = _fence_literal_blocks(text)
            text = ROLE.sub(lambda match: _role_to_html(obj, match), text)
            obj.docstring.value = text
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member, seen)  # type: ignore[arg-type]
