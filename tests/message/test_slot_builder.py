"""slot_builder makes the same objects as the dataclass constructors, or refuses."""

from __future__ import annotations

import dataclasses

import pytest

from lettre._slots import slot_builder


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int
    label: str | None = None


def test_builds_an_equal_frozen_instance() -> None:
    build = slot_builder(Point, "x", "y", "label")
    point = build(1, 2, "a")
    assert type(point) is Point
    assert point == Point(1, 2, "a")
    assert hash(point) == hash(Point(1, 2, "a"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 3  # type: ignore[misc]


def test_fields_follow_the_given_order() -> None:
    build = slot_builder(Point, "label", "y", "x")
    assert build("b", 5, 4) == Point(4, 5, "b")


@pytest.mark.parametrize(
    "fields",
    [("x", "y"), ("x", "y", "label", "label"), ("x", "y", "z"), ("x", "y", "label", "z")],
)
def test_every_field_exactly_once(fields: tuple[str, ...]) -> None:
    with pytest.raises(TypeError, match="every field"):
        slot_builder(Point, *fields)


def test_only_slotted_dataclasses() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        x: int

    class NotADataclass:
        __slots__ = ("x",)

    with pytest.raises(TypeError, match="slotted dataclass"):
        slot_builder(Plain, "x")
    with pytest.raises(TypeError, match="slotted dataclass"):
        slot_builder(NotADataclass, "x")
