"""Tests of lettre.address: Address, Mailbox, Mailboxes."""

from __future__ import annotations

import contextlib
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lettre.address import Address, Mailbox, Mailboxes
from lettre.errors import AddressError


@pytest.mark.parametrize(
    ("text", "local", "domain", "ascii_form"),
    [
        ("alice@example.org", "alice", "example.org", "alice@example.org"),
        ("Alice.Smith+tag@Example.ORG", "Alice.Smith+tag", "example.org", None),
        ('"john doe"@example.org', '"john doe"', "example.org", None),
        ('"plain"@example.org', "plain", "example.org", "plain@example.org"),
        ('"a\\"b"@example.org', '"a\\"b"', "example.org", None),
        ('"a\\b"@example.org', "ab", "example.org", None),
        ('"a@b"@example.org', '"a@b"', "example.org", None),
        ("x@Bücher.example", "x", "bücher.example", "x@xn--bcher-kva.example"),
        ("x@xn--bcher-kva.example", "x", "bücher.example", "x@xn--bcher-kva.example"),
        (
            "x@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25\uff0ecom",
            "x",
            "example.com",
            "x@example.com",
        ),
        ("postmaster@[192.0.2.1]", "postmaster", "[192.0.2.1]", "postmaster@[192.0.2.1]"),
        ("a@[IPv6:2001:DB8:0::1]", "a", "[IPv6:2001:db8::1]", "a@[IPv6:2001:db8::1]"),
        ("root@localhost", "root", "localhost", "root@localhost"),
    ],
)
def test_valid_addresses(text: str, local: str, domain: str, ascii_form: str | None) -> None:
    address = Address(text)
    assert address.local_part == local
    assert address.domain == domain
    assert not address.needs_smtputf8
    if ascii_form is not None:
        assert address.to_ascii() == ascii_form
    assert str(address) == f"{local}@{domain}"
    # The canonical form parses back to the same address.
    assert Address(str(address)) == address


def test_smtputf8_address() -> None:
    address = Address("åsa@exämple.se")
    assert address.needs_smtputf8
    assert address.local_part == "åsa"
    assert address.ascii_domain == "xn--exmple-cua.se"
    with pytest.raises(AddressError, match="SMTPUTF8"):
        address.to_ascii()


def test_idn_domain_only_does_not_need_smtputf8() -> None:
    address = Address("info@müller.de")
    assert not address.needs_smtputf8
    assert address.to_ascii() == "info@xn--mller-kva.de"


def test_equality_hash_and_immutability() -> None:
    a = Address("bob@EXAMPLE.com")
    b = Address('"bob"@example.com')
    assert a == b
    assert hash(a) == hash(b)
    assert Address("Bob@example.com") != a  # local parts are case-sensitive
    with pytest.raises(AttributeError):
        a.local_part = "eve"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a


def test_coerce() -> None:
    a = Address("a@example.org")
    assert Address.coerce(a) is a
    assert Address.coerce("a@example.org") == a
    with pytest.raises(TypeError):
        Address.coerce(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "@example.org",
        "alice@",
        "a@b@c",
        "a@b@c.d",
        "alice@example.org)<bob@example.com>",
        "alice@example.org <bob@example.com>",
        "<alice@example.org>",
        " alice@example.org",
        "alice@example.org ",
        "a b@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a(b)@example.org",
        "a@-example.org",
        "a@example-.org",
        "a@exa_mple.org",
        "a@example..org",
        "a@example.org.",
        "a@.example.org",
        "a@1.2.3.4",
        "a@[1.2.3]",
        "a@[300.1.1.1]",
        "a@[01.2.3.4]",
        "a@[IPv6:zz::1]",
        "a@[IPv6:fe80::1%eth0]",
        "a@[foo]",
        "a@[1.2.3.4",
        "a@xn--zz.example",
        '"unterminated@example.org',
        '"a"b@example.org',
        '""@example.org',
        '"a"@"b"',
        "=?utf-8?q?a=40b.example?=@example.org",
        '"=?x?q?a?="@example.org',
        "a=?b@example.org",
        "a\r\n@example.org",
        "a@example.org\r\nBcc: eve@evil.example",
        "a@example.org\n",
        "a\x00@example.org",
        "a@exa\x00mple.org",
        "a\u2028@example.org",
        "a\x85@example.org",
        "a\u00a0b@example.org",
        "x" * 65 + "@example.org",
        "a@" + "b" * 64 + ".org",
        "a@" + ".".join(["b" * 63] * 4) + ".org",
        "a" * 64 + "@" + ".".join(["b" * 60] * 4),
        "a@" + "x" * 1_000_000,
    ],
)
def test_invalid_addresses(text: str) -> None:
    with pytest.raises(AddressError):
        Address(text)


def test_address_type_error() -> None:
    with pytest.raises(TypeError):
        Address(b"a@example.org")  # type: ignore[arg-type]


def test_length_limits_accept_the_maximum() -> None:
    Address("x" * 64 + "@example.org")
    domain = ".".join(["b" * 63] * 2) + "." + "c" * 57 + ".org"
    Address("a" * 64 + "@" + domain)  # 64 + 1 + 189 = 254 octets
    with pytest.raises(AddressError):
        Address("a" * 64 + "@" + domain + "x")
    # Non-ASCII local parts are measured in octets.
    with pytest.raises(AddressError):
        Address("é" * 33 + "@example.org")
    Address("é" * 32 + "@example.org")


# --- Mailbox -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        ("alice@example.org", None, "alice@example.org"),
        ("<alice@example.org>", None, "alice@example.org"),
        ("Alice <alice@example.org>", "Alice", "alice@example.org"),
        ("Alice  Smith<alice@example.org>", "Alice Smith", "alice@example.org"),
        ('"Smith, Alice" <alice@example.org>', "Smith, Alice", "alice@example.org"),
        ('"Alice \\"Al\\" Smith" <a@example.org>', 'Alice "Al" Smith', "a@example.org"),
        ('"alice@example.org" <bob@example.com>', "alice@example.org", "bob@example.com"),
        ("(team lead) Alice (home) <alice@example.org> (x)", "Alice", "alice@example.org"),
        ("alice@example.org (Alice)", None, "alice@example.org"),
        ("John Q. Public <jqp@example.org>", "John Q. Public", "jqp@example.org"),
        ("Åsa Ek <åsa@exämple.se>", "Åsa Ek", "åsa@exämple.se"),
        ("=?utf-8?q?=C3=85sa_Ek?= <asa@example.se>", "Åsa Ek", "asa@example.se"),
        ("=?utf-8?b?w4VzYQ==?= =?utf-8?q?_Ek?= <asa@example.se>", "Åsa Ek", "asa@example.se"),
        ("=?unknown-charset?q?x?= <asa@example.se>", "=?unknown-charset?q?x?=", "asa@example.se"),
        ('"" <a@example.org>', None, "a@example.org"),
        ("< a@example.org >", None, "a@example.org"),
        ("a@[192.0.2.1]", None, "a@[192.0.2.1]"),
    ],
)
def test_mailbox_parse(text: str, name: str | None, address: str) -> None:
    mailbox = Mailbox.parse(text)
    assert mailbox.name == name
    assert mailbox.address == Address(address)
    assert Mailbox.parse(str(mailbox)) == mailbox


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "(just a comment)",
        "Alice",
        "Alice <>",
        "Alice <alice@example.org",
        "Alice alice@example.org>",
        "alice@example.org)<bob@example.com>",
        "alice@example.org <bob@example.com>",
        "alice@example.org<bob@example.com>",
        "Alice <alice@example.org> <bob@example.com>",
        "Alice <alice@example.org> bob@example.com",
        "Alice <<alice@example.org>>",
        "Alice <@route:alice@example.org>",
        "Alice <alice @example.org>",
        "Alice <alice@example.org, bob@example.com>",
        "a@b@c",
        "a@example.org, b@example.org",
        "group: a@example.org;",
        "Alice (unterminated <a@example.org>",
        '"unterminated <a@example.org>',
        "Alice\r\n <a@example.org>",
        "Alice <a@example.org>\r\nBcc: eve@evil.example",
        "=?utf-8?q?Eve=0D=0ABcc:_x?= <a@example.org>",
        "Ali\u2028ce <a@example.org>",
        "Ali\x00ce <a@example.org>",
        "x" * 1_000_000,
        "(" * 1_000_000,
    ],
)
def test_mailbox_parse_rejects(text: str) -> None:
    with pytest.raises(AddressError):
        Mailbox.parse(text)


def test_mailbox_construction_and_format() -> None:
    assert str(Mailbox("a@example.org")) == "a@example.org"
    assert str(Mailbox("a@example.org", "Alice")) == "Alice <a@example.org>"
    assert str(Mailbox("a@example.org", "Smith, Alice")) == '"Smith, Alice" <a@example.org>'
    assert str(Mailbox("a@example.org", 'A "B" \\C')) == '"A \\"B\\" \\\\C" <a@example.org>'
    assert Mailbox("a@example.org", "").name is None
    for bad in ("A\rB", "A\nB", "A\x00B", "A\u2028B", "A\u2029B", "A\x7fB"):
        with pytest.raises(AddressError):
            Mailbox("a@example.org", bad)
    with pytest.raises(TypeError):
        Mailbox("a@example.org", 3)  # type: ignore[arg-type]


def test_mailbox_coerce() -> None:
    m = Mailbox("a@example.org", "A")
    assert Mailbox.coerce(m) is m
    assert Mailbox.coerce(Address("a@example.org")) == Mailbox("a@example.org")
    assert Mailbox.coerce("A <a@example.org>") == m
    with pytest.raises(TypeError):
        Mailbox.coerce(None)  # type: ignore[arg-type]


# --- Mailboxes ---------------------------------------------------------------


def test_mailboxes_parse_lists_and_groups() -> None:
    boxes = Mailboxes.parse('a@example.org, "Doe, J." <j@example.org>,Bob<b@example.org>')
    assert [str(m.address) for m in boxes] == ["a@example.org", "j@example.org", "b@example.org"]
    assert boxes[1].name == "Doe, J."
    assert Mailboxes.parse("undisclosed-recipients:;") == Mailboxes()
    grouped = Mailboxes.parse("friends: a@example.org, B <b@example.org>;, c@example.org")
    assert [str(a) for a in grouped.addresses] == [
        "a@example.org",
        "b@example.org",
        "c@example.org",
    ]
    assert Mailboxes.parse("x: ;") == Mailboxes()
    assert Mailboxes.parse(str(boxes)) == boxes


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a@example.org,",
        ",a@example.org",
        "a@example.org,,b@example.org",
        "a@example.org b@example.org",
        "a@example.org; b@example.org",
        "group: a@example.org",
        ": a@example.org;",
        "g1: g2: a@example.org;;",
        "alice@example.org)<bob@example.com>, c@example.org",
        "a@b@c, d@example.org",
        "a@example.org,\r\n b@example.org",
        "a@example.org, " * 20_000,
    ],
)
def test_mailboxes_parse_rejects(text: str) -> None:
    with pytest.raises(AddressError):
        Mailboxes.parse(text)


def test_mailboxes_sequence_behaviour() -> None:
    boxes = Mailboxes(["a@example.org", Address("b@example.org"), Mailbox("c@example.org", "C")])
    assert len(boxes) == 3
    assert boxes[2].name == "C"
    assert isinstance(boxes[1:], Mailboxes)
    assert len(boxes[1:]) == 2
    assert hash(boxes) == hash(Mailboxes(list(boxes)))
    assert "Mailboxes(" in repr(boxes)
    with pytest.raises(TypeError):
        Mailboxes("a@example.org")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["x" * 1_000_000, "(" * 1_000_000, '"' * 1_000_000, "a," * 500_000, "<" * 1_000_000],
)
def test_oversized_input_is_refused_before_any_scanning(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lettre.address as module

    def scanned(*args: object, **kwargs: object) -> None:
        raise AssertionError("the input was scanned")

    monkeypatch.setattr(module, "_tokenize", scanned)
    monkeypatch.setattr(module, "_parse_simple", scanned)
    monkeypatch.setattr(module, "_parse_addr_spec", scanned)
    for parse in (Mailboxes.parse, Mailbox.parse, Address):
        with pytest.raises(AddressError, match="long"):
            parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "a." * 32_000,
        "a," * 32_000,
        "a@" * 32_000,
        '"a" ' * 16_000,
        "(" * 60_000 + ")" * 3_000,
        "a" * 60_000 + "@" + "b" * 5_000,
        "<" * 60_000,
    ],
)
def test_pathological_input_under_the_cap_is_refused(text: str) -> None:
    # The scanner makes one pass without backtracking patterns, so these fail
    # in linear time; what is checked here is that they fail cleanly.
    with pytest.raises(AddressError):
        Mailboxes.parse(text)
    with pytest.raises(AddressError):
        Mailbox.parse(text[:4096])
    with pytest.raises(AddressError):
        Address(text[:1024])


_atext = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~",
    min_size=1,
    max_size=10,
)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(
    local=st.lists(_atext, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda local: "=?" not in local),
    labels=st.lists(_label, min_size=1, max_size=3),
    tld=st.from_regex(r"[a-z]{2,6}", fullmatch=True),
    name=st.none()
    | st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30),
)
def test_mailbox_format_parse_round_trip(
    local: str, labels: list[str], tld: str, name: str | None
) -> None:
    address = Address(f"{local}@{'.'.join([*labels, tld])}")
    mailbox = Mailbox(address, name)
    parsed = Mailbox.parse(str(mailbox))
    assert parsed.address == address
    if name is None or "=?" not in name:
        assert parsed.name == mailbox.name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parsers_never_raise_anything_but_address_error(text: str) -> None:
    for parse in (Address, Mailbox.parse, Mailboxes.parse):
        with contextlib.suppress(AddressError):
            parse(text)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(alphabet='ab.@<> "()\\,;:[]\t=?é1', max_size=30),
        st.builds(
            lambda name, local, domain: f"{name}<{local}@{domain}>",
            st.text(alphabet="ab .é=?\t", max_size=10),
            st.text(alphabet='ab."\\ ', min_size=1, max_size=8),
            st.sampled_from(["example.org", "[192.0.2.1]", "bücher.example", "x..y"]),
        ),
    )
)
def test_fast_path_agrees_with_full_parser(text: str) -> None:
    from lettre.address import _parse_full, _parse_simple

    try:
        simple = _parse_simple(text)
    except AddressError:
        with pytest.raises(AddressError):
            _parse_full(text, allow_groups=True)
        return
    if simple is None:
        return
    assert _parse_full(text, allow_groups=True) == [simple]


# --- error messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bob@@x", "'bob@@x' has more than one @"),
        ("bob", "'bob' is not an email address: it has no @"),
        ("bob@", "'bob@' has an empty domain (nothing after the @)"),
        ("@example.org", "'@example.org' has an empty local part (nothing before the @)"),
        ("a..b@example.org", "'a..b@example.org' has an invalid local part 'a..b'"),
        ("a@exa_mple.org", "'a@exa_mple.org' has an invalid domain 'exa_mple.org'"),
        ("a@1.2.3.4", "'a@1.2.3.4' has an invalid domain '1.2.3.4': write an IP address as"),
        ("a@[1.2.3]", "'a@[1.2.3]' has an invalid domain literal '[1.2.3]'"),
        ('"a@example.org', "'\"a@example.org' has an unterminated quoted local part"),
        ("x" * 65 + "@example.org", "has a local part longer than 64 octets"),
        ("", "'' holds no address"),
    ],
)
def test_address_errors_quote_the_address_and_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(AddressError) as info:
        Address(text)
    assert message in str(info.value)
    assert str(info.value).startswith(repr(text)[:40])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_every_address_error_quotes_the_value(text: str) -> None:
    from lettre.address import _preview

    try:
        Address(text)
    except AddressError as exc:
        message = str(exc)
    else:
        return
    assert _preview(text) in message


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab.@=?é1-_x", min_size=1, max_size=24))
def test_one_parser_one_message(text: str) -> None:
    """An addr-spec is refused with the same words whichever parser sees it first."""
    try:
        Address(text)
    except AddressError as exc:
        expected = str(exc)
    else:
        return
    for parse in (Mailbox.parse, Mailboxes.parse):
        with pytest.raises(AddressError) as info:
            parse(text)
        assert str(info.value) == expected
    for wrapped in (f"Bob <{text}>", f"ok@example.org, {text}"):
        with pytest.raises(AddressError) as info:
            Mailboxes.parse(wrapped)
        assert str(info.value) == expected


def test_control_characters_are_reported_with_the_value_escaped() -> None:
    with pytest.raises(AddressError) as info:
        Address("a\nb@example.org")
    assert "'a\\nb@example.org'" in str(info.value)
    assert "U+000A" in str(info.value)
    with pytest.raises(AddressError) as info:
        Mailbox("a@example.org", "Eve\r\nBcc: x@evil.example")
    assert "'Eve\\r\\nBcc: x@evil.example'" in str(info.value)


# --- quoted local parts at their edges ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ('"a "@example.org', '"a "'),
        ('" a"@example.org', '" a"'),
        ('" "@example.org', '" "'),
        ('"\\ "@example.org', '" "'),
        ('"a<"@example.org', '"a<"'),
        ('"<"@example.org', '"<"'),
        ('"a\\\\"@example.org', '"a\\\\"'),
        ('"a\\""@example.org', '"a\\""'),
        ('"!"@example.org', "!"),
        ('"~"@example.org', "~"),
        ('"é"@example.org', "é"),
    ],
)
def test_quoted_local_parts_next_to_the_closing_quote(text: str, local: str) -> None:
    address = Address(text)
    assert address.local_part == local
    assert str(address) == f"{local}@example.org"
    assert Address(str(address)) == address
    assert Mailbox.parse(f"Bob <{text}>").address == address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('""@example.org', "has an empty quoted local part"),
        ('"a" @example.org', "needs an @ right after its quoted local part"),
        ('"a"<@example.org', "needs an @ right after its quoted local part"),
        ('"a"b@example.org', "needs an @ right after its quoted local part"),
        ('"a\\"@example.org', "has an unterminated quoted local part"),
        ('"a\\', "has an unterminated quoted local part"),
        ('"a@example.org', "has an unterminated quoted local part"),
        ("a b@example.org", "has an invalid local part 'a b': use letters, digits and"),
    ],
)
def test_quoted_local_part_errors(text: str, message: str) -> None:
    with pytest.raises(AddressError, match="^" + re.escape(f"{text!r} {message}")):
        Address(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bob@@x", "'bob@@x' has more than one @"),
        ("bob", "'bob' is not an email address: it has no @"),
        ("bob@", "'bob@' has an empty domain (nothing after the @)"),
        ("@example.org", "'@example.org' has an empty local part (nothing before the @)"),
        ("", "'' holds no address"),
        (
            "a@exa_mple.org",
            "'a@exa_mple.org' has an invalid domain 'exa_mple.org': labels are letters, digits "
            "and hyphens separated by dots",
        ),
        (
            "a@1.2.3.4",
            "'a@1.2.3.4' has an invalid domain '1.2.3.4': write an IP address as a literal, "
            "e.g. [192.0.2.1]",
        ),
        (
            "a@-x.org",
            "'a@-x.org' has an invalid domain '-x.org': a label starts or ends with a hyphen",
        ),
        (
            "a@" + "b" * 64 + ".org",
            f"'a@{'b' * 64}.org' has an invalid domain '{'b' * 64}.org': a label is longer "
            "than 63 octets",
        ),
        (
            "a@[1.2.3]",
            "'a@[1.2.3]' has an invalid domain literal '[1.2.3]': expected [IPv4 address] "
            "or [IPv6:address]",
        ),
        ("a@[]", "'a@[]' has an invalid domain literal '[]'"),
        (
            "a@[IPv6:fe80::1%eth0]",
            "'a@[IPv6:fe80::1%eth0]' has a scoped IPv6 address literal '[IPv6:fe80::1%eth0]', "
            "which is not allowed",
        ),
        (
            "a=?b@example.org",
            "'a=?b@example.org' has a local part 'a=?b' that looks like an RFC 2047 encoded word",
        ),
        ("x" * 65 + "@e.org", f"'{'x' * 65}@e.org' has a local part longer than 64 octets"),
    ],
)
def test_address_error_texts(text: str, message: str) -> None:
    with pytest.raises(AddressError, match="^" + re.escape(message) + "$"):
        Address(text)


def test_address_length_limits_at_the_boundaries() -> None:
    # 64 octets of local part are allowed, 65 are not; likewise in UTF-8.
    assert Address("x" * 64 + "@example.org").local_part == "x" * 64
    assert Address("é" * 32 + "@example.org").local_part == "é" * 32
    with pytest.raises(AddressError, match="longer than 64 octets"):
        Address("é" * 32 + "x@example.org")
    # 254 octets in all: 64 + 1 + 189.
    domain = ".".join(["d" * 63, "d" * 63, "d" * 61])  # 189 octets
    assert len(Address("x" * 64 + "@" + domain).ascii_domain) == 189
    with pytest.raises(AddressError, match="is longer than 254 octets"):
        Address("x" * 64 + "@" + domain + "d")


# --- the header-text tokenizer: comments, quoted strings, literals, encoded words ------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bob (a \\) comment) <b@example.org>", [("Bob", "b@example.org")]),
        ("Bob (outer (inner) still) <b@example.org>", [("Bob", "b@example.org")]),
        ("Bob (x)(y) <b@example.org>", [("Bob", "b@example.org")]),
        ('"Bob \\"B\\" Smith" <b@example.org>', [('Bob "B" Smith', "b@example.org")]),
        ('"Bob \\\\" <b@example.org>', [("Bob \\", "b@example.org")]),
        ("b@[192.0.2.1]", [(None, "b@[192.0.2.1]")]),
        ("Bob <b@[192.0.2.1]>, c@[192.0.2.2]", [("Bob", "b@[192.0.2.1]"), (None, "c@[192.0.2.2]")]),
        ("Bob  Smith <b@example.org>", [("Bob Smith", "b@example.org")]),
        ("Bob\t Smith\t<b@example.org>", [("Bob Smith", "b@example.org")]),
        ("Bob . Smith <b@example.org>", [("Bob . Smith", "b@example.org")]),
        ("=?utf-8?b?w4VzYQ==?= <a@example.org>", [("Åsa", "a@example.org")]),
        ("=?utf-8?B?w4VzYQ==?= <a@example.org>", [("Åsa", "a@example.org")]),
        ("=?utf-8?b?w4Vz!YQ==?= <a@example.org>", [("=?utf-8?b?w4Vz!YQ==?=", "a@example.org")]),
        ("=?utf-8?q?=C3=85sa_Ek?= <a@example.org>", [("Åsa Ek", "a@example.org")]),
        ("=?utf-8?Q?=C3=85sa_Ek?= <a@example.org>", [("Åsa Ek", "a@example.org")]),
        (
            "Group: a@example.org, b@example.org;",
            [(None, "a@example.org"), (None, "b@example.org")],
        ),
    ],
)
def test_mailbox_list_syntax(text: str, expected: list[tuple[str | None, str]]) -> None:
    assert [(m.name, str(m.address)) for m in Mailboxes.parse(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Bob (unterminated <b@example.org>", "unterminated comment in {!r}"),
        ("Bob (escaped at end\\", "unterminated comment in {!r}"),
        ("Bob (a (b) <b@example.org>", "unterminated comment in {!r}"),
        ('"Bob <b@example.org>', "unterminated quoted string in {!r}"),
        ('"Bob\\', "unterminated quoted string in {!r}"),
        ('"Bob\\"', "unterminated quoted string in {!r}"),
        ("Bob ) <b@example.org>", "unexpected ')' at position 4 in {!r}"),
        ("Bob ] <b@example.org>", "unexpected ']' at position 4 in {!r}"),
        ("Bob \\ <b@example.org>", "unexpected '\\\\' at position 4 in {!r}"),
        ("b@[1[2]", "invalid domain literal '[1[2]'"),
        ("b@[1\\2]", "invalid domain literal '[1\\\\2]'"),
        ("Bob [x <b@example.org>", "unterminated domain literal in {!r}"),
        ("[x", "unterminated domain literal in {!r}"),
        ("a@example.org b@example.org", "whitespace or a comment inside the address in {!r}"),
    ],
)
def test_mailbox_list_error_texts(text: str, message: str) -> None:
    expected = message.format(text)
    with pytest.raises(AddressError) as info:
        Mailboxes.parse(text)
    assert expected in str(info.value)


def test_one_mailbox_expected() -> None:
    text = "a@example.org, b@example.org"
    with pytest.raises(
        AddressError, match="^" + re.escape(f"expected one mailbox, found 2 in {text!r}") + "$"
    ):
        Mailbox.parse(text)
    with pytest.raises(AddressError):
        Mailbox.parse("Group: a@example.org;")


def test_mailboxes_from_a_string_is_a_type_error() -> None:
    with pytest.raises(
        TypeError,
        match="^"
        + re.escape("Mailboxes takes an iterable of mailboxes; use Mailboxes.parse(text)")
        + "$",
    ):
        Mailboxes("a@example.org")  # type: ignore[arg-type]


def test_mailboxes_hash_follows_their_items() -> None:
    assert hash(Mailboxes(["a@b.org"])) == hash(Mailboxes(["a@b.org"]))
    assert hash(Mailboxes(["a@b.org"])) != hash(Mailboxes(["c@b.org"]))
    assert len({Mailboxes(["a@b.org"]), Mailboxes(["a@b.org"]), Mailboxes([])}) == 2


def test_quoted_local_parts_are_written_with_their_escapes() -> None:
    assert str(Address('"a\\\\b c"@x.org')) == '"a\\\\b c"@x.org'
    assert str(Address('"a\\"b"@x.org')) == '"a\\"b"@x.org'
    assert str(Address('"a\\"\\\\b"@x.org')) == '"a\\"\\\\b"@x.org'


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Xavier X. Xu <x@example.org>", "Xavier X. Xu"),
        ("XX (X) <x@example.org>", "XX"),
        ('"X" <x@example.org>', "X"),
        ("=?utf-8?X?YQ==?= <a@example.org>", "=?utf-8?X?YQ==?="),
        # RFC 2047: white space between two encoded words is dropped, not elsewhere.
        ("=?utf-8?q?a?= =?utf-8?q?b?= <a@example.org>", "ab"),
        ("=?utf-8?q?a?=  =?utf-8?q?b?= c <a@example.org>", "ab c"),
        ("=?utf-8?q?a?= b <a@example.org>", "a b"),
        ("b =?utf-8?q?a?= <a@example.org>", "b a"),
    ],
)
def test_display_names_token_by_token(text: str, name: str) -> None:
    (mailbox,) = Mailboxes.parse(text)
    assert mailbox.name == name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Comments: empty, nested at their start, an escaped ')' just before the end; a
        # comment between two words counts as white space.
        ("Bob () <b@example.org>", [("Bob", "b@example.org")]),
        ("Bob ((x)) <b@example.org>", [("Bob", "b@example.org")]),
        ("Bob (a\\)) <b@example.org>", [("Bob", "b@example.org")]),
        ("Bob(x)Smith <b@example.org>", [("Bob Smith", "b@example.org")]),
        # A quoted string ends at its closing quote, even with no space after it.
        ('"Bob"<b@example.org>', [("Bob", "b@example.org")]),
        ('"Bob""Smith" <b@example.org>', [("BobSmith", "b@example.org")]),
        # A quoted string is never an encoded word (RFC 2047 section 5).
        ('"=?utf-8?q?a?=" <a@example.org>', [("=?utf-8?q?a?=", "a@example.org")]),
        ('"=?utf-8?q?a?=" =?utf-8?q?b?= <a@example.org>', [("=?utf-8?q?a?= b", "a@example.org")]),
        # An empty group, then a mailbox.
        ("Undisclosed:;, a@example.org", [(None, "a@example.org")]),
        ("G: a@example.org;, b@example.org", [(None, "a@example.org"), (None, "b@example.org")]),
    ],
)
def test_mailbox_list_syntax_edges(text: str, expected: list[tuple[str | None, str]]) -> None:
    assert [(m.name, str(m.address)) for m in Mailboxes.parse(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   ", "'   ' holds no address"),
        ("(just a comment)", "'(just a comment)' holds no address"),
        ("G: H: a@example.org;;", "nested group in 'G: H: a@example.org;;'"),
        (": a@example.org;", "a group needs a name: ': a@example.org;'"),
        ("G: a@example.org", "unterminated group (missing ';') in 'G: a@example.org'"),
        ("Undisclosed:; a@example.org", "unexpected 'a' in 'Undisclosed:; a@example.org'"),
        ("Bob <>", "missing address in 'Bob <>'"),
        (
            "Bob <a @example.org>",
            "whitespace or a comment inside the address in 'Bob <a @example.org>'",
        ),
        (
            "Bob <a@(c)example.org>",
            "whitespace or a comment inside the address in 'Bob <a@(c)example.org>'",
        ),
        ("Bob <,a@example.org>", "malformed angle address in 'Bob <,a@example.org>'"),
        ("Bob <a<b@example.org>", "malformed angle address in 'Bob <a<b@example.org>'"),
        ("Bob <a,b@example.org>", "malformed angle address in 'Bob <a,b@example.org>'"),
        ("Bob <a;b@example.org>", "malformed angle address in 'Bob <a;b@example.org>'"),
        ("Bob <a:b@example.org>", "malformed angle address in 'Bob <a:b@example.org>'"),
        ("Bob <a@example.org", "missing '>' in 'Bob <a@example.org'"),
        ("Bob <a@example.org>, ", "trailing comma in 'Bob <a@example.org>, '"),
        (", a@example.org", "unexpected ',' in ', a@example.org'"),
        ("Bob, a@example.org", "'Bob' is not an email address: it has no @"),
        ("Bob Smith", "'Bob Smith' is not an email address: it has no @"),
        ("G: Bob;", "'Bob' is not an email address: it has no @"),
        ("Bob > a@example.org", "unexpected '>' in 'Bob > a@example.org'"),
        ("G:", "unexpected the end in 'G:'"),
        ("a@example.org;", "unexpected ';' in 'a@example.org;'"),
        ("a@example.org b", "whitespace or a comment inside the address in 'a@example.org b'"),
        # Domain literals, in lists (a single mailbox takes a shorter path, straight to
        # Address): the literal is cut at its first ']' and checked whole.
        ("b@[], c@example.org", "'b@[]' has an invalid domain literal '[]'"),
        ("Bob <b@[1[2]>, c@example.org", "invalid domain literal '[1[2]'"),
        ("b@[[1], c@example.org", "invalid domain literal '[[1]'"),
        (
            "b@[1][2], c@example.org",
            "'b@[1][2]' has an invalid domain literal '[1][2]': "
            "expected [IPv4 address] or [IPv6:address]",
        ),
        (
            "Bob <b@[192.0.2.1]x>, c@example.org",
            "'b@[192.0.2.1]x' has an invalid domain literal '[192.0.2.1]x'",
        ),
        ("b@[1\\2], c@example.org", "invalid domain literal '[1\\\\2]'"),
        (
            "=?utf-8?q?a=0Db?= <a@example.org>",
            "the display name '=?utf-8?q?a=0Db?=' (decoded) contains the control character "
            "U+000D; line breaks and control characters are not allowed",
        ),
    ],
)
def test_mailbox_list_exact_error_texts(text: str, message: str) -> None:
    with pytest.raises(AddressError) as info:
        Mailboxes.parse(text)
    assert str(info.value) == message


def test_a_group_is_not_one_mailbox() -> None:
    text = "G: a@example.org;"
    with pytest.raises(AddressError) as info:
        Mailbox.parse(text)
    assert str(info.value) == f"a group is not a mailbox: {text!r}"
    assert Mailboxes.parse(text)[0].address == Address("a@example.org")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # What follows the '>' or surrounds the address inside '<>' is not stripped away
        # beyond spaces and tabs.
        ("Bob <b@example.org>x", "unexpected 'x' in 'Bob <b@example.org>x'"),
        ("Bob <b@example.org>X", "unexpected 'X' in 'Bob <b@example.org>X'"),
        ("Bob <b@example.org>\xa0", "unexpected '\\xa0' in 'Bob <b@example.org>\\xa0'"),
        (
            "Bob <\xa0b@example.org>",
            "'\\xa0b@example.org' has an invalid local part '\\xa0b': use letters, digits and "
            "!#$%&'*+-/=?^_`{|}~ with single dots between them, or a quoted string",
        ),
        (
            "Bob <a (c)@example.org>",
            "whitespace or a comment inside the address in 'Bob <a (c)@example.org>'",
        ),
        (
            "Bob\x01 <b@example.org>",
            "the address text 'Bob\\x01 <b@example.org>' contains the control character U+0001; "
            "line breaks and control characters are not allowed",
        ),
        (
            "b@[1]",
            "'b@[1]' has an invalid domain literal '[1]': "
            "expected [IPv4 address] or [IPv6:address]",
        ),
        # Quoted text in errors is cut to 77 characters and '...' beyond 80.
        ("x" * 80, f"'{'x' * 80}' is not an email address: it has no @"),
        ("x" * 81, f"'{'x' * 77}...' is not an email address: it has no @"),
    ],
)
def test_mailbox_exact_error_texts(text: str, message: str) -> None:
    with pytest.raises(AddressError) as info:
        Mailboxes.parse(text)
    assert str(info.value) == message


def test_the_address_inside_angle_brackets_is_taken_whole() -> None:
    mailbox = Mailbox.parse("Bob <Xa@example.orgX>")
    assert (mailbox.name, str(mailbox.address)) == ("Bob", "Xa@example.orgx")
    assert str(Mailbox.parse("Bob < b@example.org\t>").address) == "b@example.org"


def test_type_errors_name_the_type() -> None:
    for parse in (Mailbox.parse, Mailboxes.parse):
        with pytest.raises(TypeError, match=r"^expected a str, not int$"):
            parse(123)  # type: ignore[arg-type]
    long_bytes = b"a@example.org" + b" " * 600
    with pytest.raises(TypeError, match=r"^expected a str, not bytes$"):
        Mailboxes.parse(long_bytes)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^a display name must be a str, not int$"):
        Mailbox("a@example.org", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^expected a Mailbox, an Address or a str, not int$"):
        Mailbox.coerce(5)  # type: ignore[arg-type]


def test_no_ascii_form_error_text() -> None:
    with pytest.raises(AddressError) as info:
        Address("jörg@example.org").to_ascii()
    assert str(info.value) == (
        "jörg@example.org has a non-ASCII local part and has no ASCII form; "
        "it can only be sent to a server that offers SMTPUTF8"
    )


def test_mailbox_text_length_limit_is_inclusive() -> None:
    text = " " * (4096 - len("a@example.org")) + "a@example.org"
    assert str(Mailbox.parse(text).address) == "a@example.org"
    with pytest.raises(AddressError, match=r"is longer than 4096 characters$"):
        Mailbox.parse(" " + text)


def test_long_lists_with_groups_parse_like_short_ones() -> None:
    # Longer than what is cached: parsed on every call, with the same rules.
    text = "G: " + ", ".join(f"user{i}@example.org" for i in range(40)) + ";"
    assert len(text) > 512
    assert [str(m.address) for m in Mailboxes.parse(text)] == [
        f"user{i}@example.org" for i in range(40)
    ]
    with pytest.raises(AddressError, match=r"^a group is not a mailbox: "):
        Mailbox.parse(text)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Bob Smith", "Bob Smith <b@example.org>"),
        ("Smith, Bob", '"Smith, Bob" <b@example.org>'),
        ("  Bob   Smith ", "Bob Smith <b@example.org>"),
        ("Bob.", '"Bob." <b@example.org>'),
    ],
)
def test_display_names_are_quoted_only_when_needed(name: str, text: str) -> None:
    assert str(Mailbox("b@example.org", name)) == text
