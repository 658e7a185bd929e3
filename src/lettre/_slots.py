"""Making instances of frozen, slotted dataclasses from values already checked.

A frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``; the objects lettre makes for every message (replies,
results, parts, envelopes) are built often enough for that to show. A builder
from :func:`slot_builder` sets each slot through its descriptor instead: the
same object, no ``__init__``, no validation, about half the time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["slot_builder"]

T = TypeVar("T")


def slot_builder(cls: type[T], *fields: str) -> Callable[..., T]:
    """A function ``build(value, ...)`` that makes a ``cls`` with ``fields`` set, in order.

    Args:
        cls: a slotted dataclass.
        fields: the names of all its fields, in the order ``build`` takes them.

    Returns:
        The builder. It does not run ``__init__`` or ``__post_init__``: give it
        only values that are already valid.

    Raises:
        TypeError: ``cls`` is not a slotted dataclass, or ``fields`` does not
            name each of its fields exactly once.
    """
    if not dataclasses.is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    names = {field.name for field in dataclasses.fields(cls)}
    if len(fields) != len(names) or set(fields) != names:
        raise TypeError(f"give every field of {cls.__name__} once: {sorted(names)}")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    params = [f"v{index}" for index in range(len(fields))]
    lines = [f"def build({', '.join(params)}):", "    obj = new(cls)"]
    for index, name in enumerate(fields):
        namespace[f"set{index}"] = cls.__dict__[name].__set__
        lines.append(f"    set{index}(obj, v{index})")
    lines.append("    return obj")
    # Generated, like dataclasses' own __init__: one call per field, no loop.
    exec("\n".join(lines), namespace)  # noqa: S102
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"slot_builder.<{cls.__name__}>"
    return build
