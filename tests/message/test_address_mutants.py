"""The addr-spec parser's details that mutation testing found unpinned (issue 21).

Every error of ``Address`` is what the user reads: each test checks the whole
message, which quotes the address and says what is wrong with it.
"""

from __future__ import annotations

import re

import pytest

from lettre.address import MAX_ADDRESS_LENGTH, Address, check_header_text
from lettre.errors import AddressError

ATEXT_ADVICE = (
    "use letters, digits and !#$%&'*+-/=?^_`{|}~ with single dots between them, or a quoted string"
)


def preview(text: str) -> str:
    """How an error quotes the address: its repr, cut after 77 characters when longer than 80."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def refused(text: str) -> str:
    """The message of the AddressError that ``Address(text)`` raises."""
    with pytest.raises(AddressError) as caught:
        Address(text)
    return str(caught.value)


# --------------------------------------------------------------------- Address()


def test_address_takes_only_a_str() -> None:
    with pytest.raises(TypeError, match=re.escape("an address must be a str, not bytes")):
        Address(b"a@example.com")  # type: ignore[arg-type]


def test_address_text_over_the_scan_limit_is_refused_before_parsing() -> None:
    text = "a" * 1020 + "@b.c"
    assert len(text) == 1024
    # Within the scan limit: parsed, and refused for what it is.
    assert refused(text) == f"{preview(text)} has a local part longer than 64 octets"
    longer = "a" * 1021 + "@b.c"
    assert refused(longer) == (
        f"{preview(longer)} is 1025 characters long; an address has at most 254 octets"
    )


def test_address_with_a_control_character() -> None:
    assert refused("a\x01b@example.com") == (
        "the address 'a\\x01b@example.com' contains the control character U+0001; "
        "line breaks and control characters are not allowed"
    )
    assert refused("a@exa\u2028mple.com") == (
        "the address 'a@exa\\u2028mple.com' contains the control character U+2028; "
        "line breaks and control characters are not allowed"
    )


def test_check_header_text_passes_printable_text_and_tabs() -> None:
    check_header_text("Subject line", "the subject")
    check_header_text("a\tb", "the subject")
    with pytest.raises(
        AddressError,
        match=re.escape(
            "the subject contains the control character U+007F; "
            "line breaks and control characters are not allowed"
        ),
    ):
        check_header_text("a\x7f", "the subject")


def test_address_parts() -> None:
    address = Address("Bob.Smith@Bücher.Example")
    assert (address.local_part, address.domain, address.ascii_domain) == (
        "Bob.Smith",
        "bücher.example",
        "xn--bcher-kva.example",
    )
    assert Address.coerce(address) is address
    assert Address.coerce("a@example.com") == Address("a@example.com")


# --------------------------------------------------------------------- splitting at the @


@pytest.mark.parametrize(
    ("text", "local", "domain"),
    [
        ('"a@b"@example.com', '"a@b"', "example.com"),
        ('"a\\"b"@example.com', '"a\\"b"', "example.com"),
        ('"a\\\\"@example.com', '"a\\\\"', "example.com"),
        ('"a.b"@example.com', "a.b", "example.com"),
        ('"a\\b"@example.com', "ab", "example.com"),
        ('"a b"@example.com', '"a b"', "example.com"),
        ("a@[192.0.2.1]", "a", "[192.0.2.1]"),
    ],
)
def test_quoted_local_parts_and_literals(text: str, local: str, domain: str) -> None:
    address = Address(text)
    assert (address.local_part, address.domain) == (local, domain)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "'' holds no address"),
        ("example.com", "'example.com' is not an email address: it has no @"),
        ("a@b@example.com", "'a@b@example.com' has more than one @"),
        ("@example.com", "'@example.com' has an empty local part (nothing before the @)"),
        ("a@", "'a@' has an empty domain (nothing after the @)"),
        ('"abc@example.com', "'\"abc@example.com' has an unterminated quoted local part"),
        ('"a\\"@example.com', "'\"a\\\\\"@example.com' has an unterminated quoted local part"),
        ('"', "'\"' has an unterminated quoted local part"),
        ('"a"b@example.com', "'\"a\"b@example.com' needs an @ right after its quoted local part"),
        ('"a"', "'\"a\"' needs an @ right after its quoted local part"),
        ('""@example.com', "'\"\"@example.com' has an empty quoted local part"),
        (
            "a@[192.0.2.1@x]",
            "'a@[192.0.2.1@x]' has an invalid domain literal '[192.0.2.1@x]': "
            "expected [IPv4 address] or [IPv6:address]",
        ),
    ],
)
def test_addr_spec_errors(text: str, message: str) -> None:
    assert refused(text) == message


# --------------------------------------------------------------------- local parts


@pytest.mark.parametrize("local", [".ü", "ü.", "ü..x", ".", "ü.a,b", "ü]x", "üa,b", "ü.a b"])
def test_non_ascii_local_part_must_be_a_dot_atom(local: str) -> None:
    text = f"{local}@example.com"
    assert refused(text) == f"{text!r} has an invalid local part {local!r}: {ATEXT_ADVICE}"


@pytest.mark.parametrize("local", ["ü.x", "ü.x.ÿ", "a~ü", "ü{|}~`^_"])
def test_non_ascii_dot_atoms(local: str) -> None:
    assert Address(f"{local}@example.com").local_part == local


def test_quoted_local_part_with_a_tab_or_an_unprintable_character() -> None:
    assert refused('"a\\\tb"@example.com') == (
        "'\"a\\\\\\tb\"@example.com' has an invalid escaped character in its local part "
        "'\"a\\\\\\tb\"'"
    )
    assert refused('"a\tb"@example.com') == (
        "'\"a\\tb\"@example.com' has a control character in its local part '\"a\\tb\"'"
    )
    assert refused('"a\u00a0b"@example.com') == (
        "'\"a\\xa0b\"@example.com' has an unprintable character in its local part '\"a\\xa0b\"'"
    )
    # A space and a printable non-ASCII character are fine inside quotes.
    assert Address('"a ü"@example.com').local_part == '"a ü"'


def test_local_part_that_looks_like_an_encoded_word() -> None:
    assert refused("=?utf-8?q?a?=@example.com") == (
        "'=?utf-8?q?a?=@example.com' has a local part '=?utf-8?q?a?=' that looks like "
        "an RFC 2047 encoded word"
    )


def test_local_part_length_in_octets() -> None:
    assert Address("a" * 64 + "@example.com").local_part == "a" * 64
    text = "a" * 65 + "@example.com"
    assert refused(text) == f"{preview(text)} has a local part longer than 64 octets"
    # 32 two-octet characters fit; 33 do not, though they are 33 characters.
    assert Address("ü" * 32 + "@example.com").local_part == "ü" * 32
    assert refused("ü" * 33 + "@example.com") == (
        f"{preview('ü' * 33 + '@example.com')} has a local part longer than 64 octets"
    )
    quoted = '"' + "a " * 32 + '"@example.com'  # 64 characters of content, 66 quoted
    assert refused(quoted) == f"{preview(quoted)} has a local part longer than 64 octets"


# --------------------------------------------------------------------- domains


def test_address_length_counts_octets_of_the_ascii_form() -> None:
    local = "a" * 64
    fits = f"{local}@{'d' * 63}.{'e' * 63}.{'f' * 61}"
    assert len(fits) == MAX_ADDRESS_LENGTH
    assert str(Address(fits)) == fits
    over = fits + "f"
    assert refused(over) == f"{preview(over)} is longer than 254 octets"
    # The ASCII form of the domain is what is counted: ü becomes xn--tda.
    short = f"{'a' * 60}@{'ü' * 1}.{'e' * 63}.{'f' * 63}.{'g' * 60}"
    assert len(short) < MAX_ADDRESS_LENGTH
    assert refused(short) == f"{preview(short)} is longer than 254 octets"
    # And the local part's UTF-8 octets.
    utf8 = f"{'ü' * 10}@{'d' * 63}.{'e' * 63}.{'f' * 63}.{'g' * 44}"
    assert len(utf8) == 247
    assert refused(utf8) == f"{preview(utf8)} is longer than 254 octets"


def test_domain_over_255_octets() -> None:
    domain = ".".join(["d" * 63] * 4)  # 255 octets: within the domain's limit
    assert refused(f"a@{domain}") == f"{preview('a@' + domain)} is longer than 254 octets"
    longer = domain + ".e"  # 257 octets
    assert refused(f"a@{longer}") == (
        f"{preview('a@' + longer)} has a domain longer than 255 octets"
    )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("a@xn--zzzzzz.example", "'xn--zzzzzz.example': Invalid A-label"),
        ("a@ü_x.example", "'ü_x.example': Codepoint U+005F at position 2 of 'ü_x' not allowed"),
    ],
)
def test_invalid_internationalised_domain(text: str, detail: str) -> None:
    assert refused(text) == f"{text!r} has an invalid internationalised domain {detail}"


def test_internationalised_domain_is_nontransitional() -> None:
    # UTS #46 nontransitional processing (IDNA2008): ß stays ß, it is not mapped to ss.
    address = Address("a@faß.de")
    assert (address.domain, address.ascii_domain) == ("faß.de", "xn--fa-hia.de")


def test_internationalised_domain_errors_quote_the_domain_as_given() -> None:
    assert refused("a@ü.123") == (
        "'a@ü.123' has an invalid domain 'ü.123': write an IP address as a literal, "
        "e.g. [192.0.2.1]"
    )
