"""Tests of lettre.envelope.Envelope."""

from __future__ import annotations

import pytest

from lettre.address import Address
from lettre.envelope import Envelope
from lettre.errors import AddressError, MessageError


def test_basic_envelope() -> None:
    env = Envelope("from@example.org", ["a@example.org", Address("b@example.org")])
    assert env.reverse_path == Address("from@example.org")
    assert env.forward_paths == (Address("a@example.org"), Address("b@example.org"))
    assert env.notify is None
    assert env.ret is None
    assert env.envid is None
    assert env.orcpt is False
    assert not env.has_dsn
    assert not env.needs_smtputf8


def test_forward_paths_are_deduplicated_in_order() -> None:
    env = Envelope(
        None,
        ["b@example.org", "a@example.org", "b@EXAMPLE.org", '"a"@example.org', "c@example.org"],
    )
    assert [str(a) for a in env.forward_paths] == [
        "b@example.org",
        "a@example.org",
        "c@example.org",
    ]


def test_null_reverse_path() -> None:
    assert Envelope(None, ["a@example.org"]).reverse_path is None
    assert Envelope("", ["a@example.org"]).reverse_path is None


def test_single_string_forward_path() -> None:
    env = Envelope("f@example.org", "a@example.org")
    assert env.forward_paths == (Address("a@example.org"),)


def test_needs_smtputf8() -> None:
    assert Envelope("åsa@example.se", ["a@example.org"]).needs_smtputf8
    assert Envelope("a@example.org", ["b@example.org", "jörg@example.de"]).needs_smtputf8
    assert not Envelope("a@exämple.se", ["b@müller.de"]).needs_smtputf8


def test_requires_a_recipient() -> None:
    with pytest.raises(MessageError, match="at least one recipient"):
        Envelope("a@example.org", [])


def test_invalid_addresses() -> None:
    with pytest.raises(AddressError):
        Envelope("not an address", ["a@example.org"])
    with pytest.raises(AddressError):
        Envelope("a@example.org", ["a@example.org\r\nRCPT TO:<x@evil.example>"])


def test_dsn_fields() -> None:
    env = Envelope(
        "a@example.org",
        ["b@example.org"],
        notify=["success", "Failure"],
        ret="hdrs",
        envid="QQ314159",
        orcpt=True,
    )
    assert env.notify == frozenset({"SUCCESS", "FAILURE"})
    assert env.ret == "HDRS"
    assert env.envid == "QQ314159"
    assert env.orcpt is True
    assert env.has_dsn
    assert Envelope("a@example.org", ["b@example.org"], notify=["NEVER"]).notify == {"NEVER"}
    assert Envelope("a@example.org", ["b@example.org"], notify="DELAY,FAILURE").notify == {
        "DELAY",
        "FAILURE",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"notify": []},
        {"notify": ["NEVER", "SUCCESS"]},
        {"notify": ["SOMETIMES"]},
        {"ret": "ALL"},
        {"ret": ""},
        {"envid": ""},
        {"envid": "x" * 101},
        {"envid": "has space"},
        {"envid": "line\r\nbreak"},
        {"envid": "caf\u00e9"},
    ],
)
def test_invalid_dsn_fields(kwargs: dict[str, object]) -> None:
    with pytest.raises(MessageError):
        Envelope("a@example.org", ["b@example.org"], **kwargs)  # type: ignore[arg-type]


def test_immutable_and_hashable() -> None:
    env = Envelope("a@example.org", ["b@example.org"])
    assert env == Envelope("a@example.org", ["b@example.org"])
    assert hash(env) == hash(Envelope("a@example.org", ["b@example.org"]))
    with pytest.raises(AttributeError):
        env.orcpt = True  # type: ignore[misc]


def test_address_errors_name_the_envelope_field() -> None:
    with pytest.raises(AddressError, match=r"^reverse_path: 'a@@b' has more than one @$"):
        Envelope("a@@b", ["c@example.org"])
    with pytest.raises(AddressError, match=r"^forward_paths: 'x' is not an email address"):
        Envelope("a@example.org", ["c@example.org", "x"])
    with pytest.raises(TypeError, match=r"^forward_paths: "):
        Envelope("a@example.org", [3])  # type: ignore[list-item]
