"""Property tests: every built message parses back with the stdlib to the same content."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettre.address import Mailbox
from lettre.message import Message

from .conftest import assert_wire_format, parse

# Text that may appear in headers: anything printable, no line breaks or
# control characters (those are refused, as tested elsewhere).
_header_chars = st.characters(
    blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\u0085"
)
_names = st.text(_header_chars, min_size=1, max_size=90) | st.text(
    st.sampled_from('ab, ."(<'), min_size=1, max_size=120
)
_subjects = st.text(st.one_of(_header_chars, st.sampled_from(" \t")), max_size=200)
_atext = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~",
    min_size=1,
    max_size=12,
).filter(lambda local: "=?" not in local)  # refused: looks like an encoded word
_domains = st.sampled_from(
    ["example.org", "mail.example.com", "bücher.example", "xn--mller-kva.de", "[192.0.2.7]"]
)
_addresses = st.builds(lambda local, domain: f"{local}@{domain}", _atext, _domains)
_mailboxes = st.builds(Mailbox, _addresses, st.none() | _names)

_line = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=80),
    st.just("." + "x" * 5),
    st.just("."),
    st.just("From the start"),
    st.text(st.sampled_from("ab é\t"), min_size=900, max_size=3000),
    st.just("--=_ looks like a boundary"),
)
_bodies = st.lists(_line, max_size=8).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda sep: sep.join(lines))
)
_filenames = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\u0085"),
    min_size=1,
    max_size=80,
).filter(
    # The stdlib strips surrounding whitespace (lettre refuses it) and
    # surrounding double quotes from file names, however they are encoded.
    lambda name: name.strip() == name and not (name.startswith('"') and name.endswith('"'))
)
_attachments = st.lists(st.tuples(st.binary(max_size=3000), _filenames), max_size=3)


def _expected_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def _same_name(parsed: str, expected: str | None, adjacent_words: bool) -> bool:
    if adjacent_words:
        # The stdlib's address parser inserts a space between adjacent encoded
        # words in a display name, where RFC 2047 says the whitespace between
        # them is to be ignored (it does the same with its own output).
        return parsed.replace(" ", "") == (expected or "").replace(" ", "")
    return parsed == (expected or "")


def _has_adjacent_words(raw: bytes) -> bool:
    unfolded = raw.replace(b"\r\n ", b" ")
    return b"?= =?" in unfolded


def _content(part: object) -> str:
    value = part.get_content()  # type: ignore[attr-defined]
    assert isinstance(value, str)
    return value.replace("\r\n", "\n")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sender=_mailboxes,
    to=st.lists(_mailboxes, min_size=1, max_size=4),
    subject=_subjects,
    text=st.none() | _bodies,
    html=st.none() | _bodies,
    attachments=_attachments,
)
def test_built_messages_parse_back(
    sender: Mailbox,
    to: list[Mailbox],
    subject: str,
    text: str | None,
    html: str | None,
    attachments: list[tuple[bytes, str]],
) -> None:
    builder = Message.builder().from_(sender).to(to).subject(subject)
    if text is not None:
        builder.text(text)
    if html is not None:
        builder.html(html)
    for data, filename in attachments:
        builder.attach(data, filename, "application/octet-stream")
    message = builder.build()
    raw = message.as_bytes()
    assert raw == message.as_bytes()
    assert_wire_format(raw)
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        # Header lines fold at 78 unless a single address cannot be split.
        assert len(line) <= 78 or b"@" in line

    parsed = parse(raw)
    assert parsed["Subject"] == subject
    adjacent = _has_adjacent_words(raw.split(b"\r\nSubject:", 1)[0])
    (from_,) = parsed["From"].addresses
    assert _same_name(from_.display_name, sender.name, adjacent)
    assert from_.addr_spec == sender.address.to_ascii()
    assert [a.addr_spec for a in parsed["To"].addresses] == [m.address.to_ascii() for m in to]
    for parsed_to, expected_to in zip(parsed["To"].addresses, to, strict=True):
        assert _same_name(parsed_to.display_name, expected_to.name, adjacent)
    assert parsed["Message-ID"] == message.message_id

    leaves = [p for p in parsed.walk() if not p.is_multipart() and "Content-Type" in p]
    bodies = [p for p in leaves if p.get_content_disposition() != "attachment"]
    files = [p for p in leaves if p.get_content_disposition() == "attachment"]
    expected_bodies = [(kind, b) for kind, b in (("plain", text), ("html", html)) if b is not None]
    assert [p.get_content_subtype() for p in bodies] == [kind for kind, _ in expected_bodies]
    for part, (_, body) in zip(bodies, expected_bodies, strict=True):
        assert _content(part) == _expected_text(body)
    assert [(p.get_payload(decode=True), p.get_filename()) for p in files] == attachments
    assert all(not p.defects for p in parsed.walk())
