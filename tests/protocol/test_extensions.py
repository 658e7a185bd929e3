"""EHLO replies become Capabilities."""

from __future__ import annotations

import pytest

from lettre.errors import RemoteProtocolError
from lettre.protocol.extensions import Capabilities
from lettre.protocol.replies import Reply


def caps(*lines: str) -> Capabilities:
    return Capabilities.from_reply(Reply(250, None, ("mx.example greets you", *lines)))


def test_every_known_extension() -> None:
    c = caps(
        "PIPELINING",
        "SIZE 35882577",
        "8BITMIME",
        "SMTPUTF8",
        "CHUNKING",
        "BINARYMIME",
        "STARTTLS",
        "DSN",
        "ENHANCEDSTATUSCODES",
        "REQUIRETLS",
        "AUTH PLAIN LOGIN",
    )
    assert c.size == 35882577
    flags = [
        "pipelining",
        "eightbitmime",
        "smtputf8",
        "chunking",
        "binarymime",
        "starttls",
        "dsn",
        "enhancedstatuscodes",
        "requiretls",
    ]
    assert all(getattr(c, flag) for flag in flags)
    assert c.auth == frozenset({"PLAIN", "LOGIN"})
    assert c.supports("pipelining")
    assert c.supports("AUTH")


def test_nothing_announced() -> None:
    c = Capabilities.from_reply(Reply(250, None, ("mx.example",)))
    assert c == Capabilities()
    assert c.size is None
    assert not c.pipelining
    assert c.auth == frozenset()
    assert dict(c.extensions) == {}
    assert not c.supports("STARTTLS")
    assert hash(c) == hash(Capabilities())


def test_keywords_are_case_insensitive_and_unknown_ones_kept() -> None:
    c = caps("pipelining", "x-custom-thing a=1 b", "Etrn", "DELIVERBY 3600")
    assert c.pipelining
    assert c.extensions == {
        "PIPELINING": "",
        "X-CUSTOM-THING": "a=1 b",
        "ETRN": "",
        "DELIVERBY": "3600",
    }


def test_old_auth_form_is_merged() -> None:
    c = caps("AUTH=LOGIN PLAIN", "AUTH plain cram-md5 XOAUTH2")
    assert c.auth == frozenset({"LOGIN", "PLAIN", "CRAM-MD5", "XOAUTH2"})
    assert c.extensions["AUTH"] == "LOGIN PLAIN CRAM-MD5 XOAUTH2"
    assert caps("AUTH=LOGIN").auth == frozenset({"LOGIN"})
    assert caps("AUTH").auth == frozenset()
    assert caps("AUTH").supports("AUTH")


@pytest.mark.parametrize(
    ("line", "size"),
    [("SIZE", 0), ("SIZE 0", 0), ("SIZE 1000", 1000), ("SIZE lots", 0), ("SIZE ١٢", 0)],
)
def test_size(line: str, size: int) -> None:
    assert caps(line).size == size


def test_malformed_keyword_lines_are_ignored() -> None:
    c = caps("", "-BAD", "=x", "  ", "8BITMIME")
    assert dict(c.extensions) == {"8BITMIME": ""}


def test_not_a_positive_reply() -> None:
    with pytest.raises(RemoteProtocolError):
        Capabilities.from_reply(Reply(502, None, ("no EHLO here",)))
    with pytest.raises(RemoteProtocolError):
        Capabilities.from_reply(Reply(354, None, ("what",)))


def test_extensions_are_read_only() -> None:
    c = caps("PIPELINING")
    with pytest.raises(TypeError):
        c.extensions["X"] = ""  # type: ignore[index]


@pytest.mark.parametrize("code", [199, 300, 354, 421, 500])
def test_only_a_2xx_reply_has_capabilities(code: int) -> None:
    with pytest.raises(RemoteProtocolError, match=f"^not a positive EHLO reply: {code}$"):
        Capabilities.from_reply(Reply(code, None, ("mx.example", "PIPELINING")))


@pytest.mark.parametrize("code", [200, 250, 299])
def test_any_2xx_reply_has_capabilities(code: int) -> None:
    assert Capabilities.from_reply(Reply(code, None, ("mx.example", "PIPELINING"))).pipelining
