"""Tests of MIME parts: content types, transfer encodings, base64, boundaries."""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

import pytest

import lettre.message.mime as mime
from lettre.errors import MessageError
from lettre.message import Attachment, ContentType, Message, MultiPart, SinglePart
from lettre.message.mime import TransferEncoding, choose_encoding, encode_base64, resolve

from .conftest import assert_wire_format, parse


def test_content_type_parse_and_format() -> None:
    ctype = ContentType('Text/HTML; Charset="utf-8"; format=flowed; name="a b.txt"')
    assert ctype.maintype == "text"
    assert ctype.subtype == "html"
    assert ctype.essence == "text/html"
    assert ctype.param("charset") == "utf-8"
    assert ctype.param("CHARSET") == "utf-8"
    assert ctype.param("missing") is None
    assert str(ctype) == 'text/html; charset=utf-8; format=flowed; name="a b.txt"'
    assert ContentType(str(ctype)) == ctype
    assert ctype.with_param("charset", "us-ascii").param("charset") == "us-ascii"
    assert ContentType("image/png", {"name": "x.png"}).params == (("name", "x.png"),)
    assert ContentType.coerce(ctype) is ctype


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "text",
        "text/",
        "/plain",
        "te xt/plain",
        "text/plain; charset",
        'text/plain; a="x',
        "text/plain\r\n",
    ],
)
def test_invalid_content_types(bad: str) -> None:
    with pytest.raises(MessageError):
        ContentType(bad)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.PDF", "application/pdf"),
        ("photo.jpeg", "image/jpeg"),
        ("archive.tar.gz", "application/gzip"),
        ("notes.txt", "text/plain"),
        ("unknown.xyz123", "application/octet-stream"),
        ("no_extension", "application/octet-stream"),
        ("invite.ics", "text/calendar"),
    ],
)
def test_content_type_guess(filename: str, expected: str) -> None:
    assert ContentType.guess(filename).essence == expected


def test_single_part_text_normalises_line_endings() -> None:
    part = SinglePart("a\rb\nc\r\nd")
    assert part.body == b"a\r\nb\r\nc\r\nd\r\n"
    assert part.content_type.param("charset") == "utf-8"
    latin = SinglePart("é", "text/plain; charset=iso-8859-1")
    assert latin.body == b"\xe9\r\n"
    assert SinglePart("").body == b""


def test_single_part_errors() -> None:
    with pytest.raises(MessageError):
        SinglePart("text", "image/png")
    with pytest.raises(MessageError):
        SinglePart("€", "text/plain; charset=us-ascii")
    with pytest.raises(MessageError):
        SinglePart("x", "text/plain; charset=no-such-charset")
    with pytest.raises(MessageError):
        SinglePart(b"x", "multipart/mixed")
    with pytest.raises(MessageError):
        SinglePart(b"x", transfer_encoding="uuencode")
    with pytest.raises(MessageError):
        SinglePart(b"x", disposition="sideways")
    with pytest.raises(MessageError):
        SinglePart(b"x", filename="")
    with pytest.raises(MessageError):
        SinglePart(b"x", filename="x" * 256)
    with pytest.raises(MessageError, match="whitespace"):
        SinglePart(b"x", filename=" report.pdf")
    with pytest.raises(MessageError):
        SinglePart(b"x", headers=[("Content-Type", "text/plain")])
    with pytest.raises(MessageError):
        SinglePart(b"x", headers=[("X-Desc", "a\r\nb")])
    with pytest.raises(TypeError):
        SinglePart(3)  # type: ignore[arg-type]
    with pytest.raises(MessageError):
        SinglePart("\ud800")


@pytest.mark.parametrize(
    ("ctype", "data", "expected"),
    [
        ("text/plain", b"hello\r\nworld\r\n", TransferEncoding.SEVEN_BIT),
        ("text/plain", b"x" * 79, TransferEncoding.QUOTED_PRINTABLE),
        ("text/plain", "Hello Jörg, how are you?\r\n".encode(), TransferEncoding.QUOTED_PRINTABLE),
        ("text/plain", "日本語のテキスト\r\n".encode(), TransferEncoding.BASE64),
        ("text/plain", b"bare\nline feed", TransferEncoding.BASE64),
        ("text/plain", b"nul\x00byte", TransferEncoding.QUOTED_PRINTABLE),
        ("application/octet-stream", b"\x00\x01\x02", TransferEncoding.BASE64),
        ("application/octet-stream", b"ascii\r\nlines\r\n", TransferEncoding.SEVEN_BIT),
        ("image/png", "é".encode(), TransferEncoding.BASE64),
    ],
)
def test_choose_encoding(ctype: str, data: bytes, expected: TransferEncoding) -> None:
    assert choose_encoding(ContentType(ctype), data) is expected


def test_forced_encodings_are_checked() -> None:
    def build(part: SinglePart) -> Message:
        return Message.builder().from_("a@example.org").to("b@example.org").body(part).build()

    with pytest.raises(MessageError, match="7bit"):
        build(SinglePart(b"\xff", transfer_encoding="7bit"))
    with pytest.raises(MessageError, match="8bit"):
        build(SinglePart(b"a\x00b", transfer_encoding="8bit"))
    with pytest.raises(MessageError, match="8bit"):
        build(SinglePart(b"x" * 999, transfer_encoding="8bit"))
    with pytest.raises(MessageError, match="quoted-printable"):
        build(SinglePart(b"a\nb", transfer_encoding="quoted-printable"))
    message = build(SinglePart(b"\x00\xff", "application/x-thing", transfer_encoding="base64"))
    assert parse(message.as_bytes()).get_content() == b"\x00\xff"
    qp = build(
        SinglePart(b"\xff\xfe\r\n", "application/x-thing", transfer_encoding="QUOTED-PRINTABLE")
    )
    assert parse(qp.as_bytes()).get_payload(decode=True) == b"\xff\xfe\r\n"


@pytest.mark.parametrize(
    "size",
    [0, 1, 2, 3, 56, 57, 58, 114, 57 * 4096 - 1, 57 * 4096, 57 * 4096 + 1, 57 * 4096 * 2 + 100],
)
def test_base64_lines(size: int) -> None:
    data = os.urandom(size)
    out: list[bytes | bytearray] = []
    encode_base64(data, out)
    encoded = b"".join(out)
    if size == 0:
        assert encoded == b""
        return
    assert encoded.endswith(b"\r\n")
    lines = encoded[:-2].split(b"\r\n")
    assert all(len(line) == 76 for line in lines[:-1])
    assert 0 < len(lines[-1]) <= 76
    assert base64.b64decode(b"".join(lines), validate=True) == data
    assert encoded == base64.encodebytes(data).replace(b"\n", b"\r\n")


def test_quoted_printable_body_round_trip() -> None:
    text = "A line with one ä that is quite long " * 10 + "\ntrailing space \nend"
    message = Message.builder().from_("a@example.org").to("b@example.org").text(text).build()
    data = message.as_bytes()
    assert_wire_format(data)
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    assert parse(data).get_content().replace("\r\n", "\n") == text + "\n"


def test_generated_boundary_avoids_content(monkeypatch: pytest.MonkeyPatch) -> None:
    candidates = iter(["=_clash", "=_clash", "=_fresh"])
    monkeypatch.setattr(mime, "new_boundary", lambda: next(candidates))
    tree = MultiPart.mixed(
        SinglePart(b"--=_clash\r\n", "text/plain"), SinglePart(b"x", "text/plain")
    )
    resolved = resolve(tree)
    assert isinstance(resolved, MultiPart)
    assert resolved.boundary == "=_fresh"


def test_explicit_boundary_must_not_occur_in_content() -> None:
    tree = MultiPart.mixed(SinglePart(b"line\r\n--abc\r\n", "text/plain"), boundary="abc")
    with pytest.raises(MessageError, match="boundary"):
        resolve(tree)
    qp_tree = MultiPart.mixed(SinglePart("--abc " + "plain text " * 20 + "é"), boundary="abc")
    with pytest.raises(MessageError, match="boundary"):
        resolve(qp_tree)
    ok = resolve(MultiPart.mixed(SinglePart(b"\x00--abc", "application/x-b"), boundary="abc"))
    assert isinstance(ok, MultiPart)


@pytest.mark.parametrize("bad", ["", "x" * 71, "ends with space ", 'bad"quote', "ä", "a\r\nb"])
def test_invalid_boundaries(bad: str) -> None:
    with pytest.raises(MessageError):
        MultiPart.mixed(SinglePart.plain("x"), boundary=bad)


def test_multipart_errors() -> None:
    with pytest.raises(MessageError):
        MultiPart("mixed", [])
    with pytest.raises(MessageError):
        MultiPart("mi xed", [SinglePart.plain("x")])
    with pytest.raises(TypeError):
        MultiPart("mixed", ["text"])  # type: ignore[list-item]
    with pytest.raises(MessageError):
        MultiPart("mixed", [SinglePart.plain("x")], params={"boundary": "x"})


def test_nesting_limit() -> None:
    part: SinglePart | MultiPart = SinglePart.plain("deep")
    for _ in range(40):
        part = MultiPart.mixed(part)
    with pytest.raises(MessageError, match="deeper"):
        resolve(part)


def test_nested_multiparts_round_trip(fixed_boundaries: None) -> None:
    inner = MultiPart.alternative(SinglePart.plain("plain"), SinglePart.html("<p>html</p>"))
    outer = MultiPart.mixed(
        inner,
        Attachment(b"\x00" * 100, "zeros.bin"),
        MultiPart.related(
            SinglePart.html("<img src=cid:i>"), Attachment(b"img", "i.gif", content_id="i")
        ),
    )
    message = Message.builder().from_("a@example.org").to("b@example.org").body(outer).build()
    data = message.as_bytes()
    assert_wire_format(data)
    parsed = parse(data)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/octet-stream",
        "multipart/related",
        "text/html",
        "image/gif",
    ]
    leaves = [p for p in parsed.walk() if not p.is_multipart()]
    assert leaves[0].get_content() == "plain\r\n"
    assert leaves[2].get_content() == b"\x00" * 100
    assert leaves[4].get_content() == b"img"
    assert leaves[4]["Content-ID"] == "<i>"
    assert parsed.defects == []
    assert all(p.defects == [] for p in parsed.walk())


def test_attachment_from_path(tmp_path: Path) -> None:
    path = tmp_path / "Räkning 2025.pdf"
    path.write_bytes(b"%PDF")
    attachment = Attachment.from_path(path)
    assert attachment.filename == "Räkning 2025.pdf"
    assert attachment.content_type.essence == "application/pdf"
    renamed = Attachment.from_path(path, filename="x.bin", content_type="application/x-custom")
    assert renamed.filename == "x.bin"
    assert renamed.content_type.essence == "application/x-custom"
    with pytest.raises(TypeError):
        Attachment("not bytes")  # type: ignore[arg-type]
    assert Attachment(b"x").content_type.essence == "application/octet-stream"


def test_message_rfc822_is_not_base64() -> None:
    inner = Message.builder().from_("a@example.org").to("b@example.org").text("inner").build()
    part = SinglePart(
        inner.as_bytes(), "message/rfc822", disposition="attachment", filename="fwd.eml"
    )
    outer = Message.builder().from_("c@example.org").to("d@example.org").attach(part).build()
    data = outer.as_bytes()
    assert b"Content-Transfer-Encoding: 7bit" in data
    attached = list(parse(data).walk())[1]
    assert attached.get_content_type() == "message/rfc822"
    assert attached.get_content()["From"] == "a@example.org"


def test_transfer_encoding_str() -> None:
    assert str(TransferEncoding.BASE64) == "base64"
    assert binascii  # the module under test relies on binascii for all encodings


def test_coerce_parses_long_text_and_refuses_other_types() -> None:
    long_value = "a" * 300
    ctype = ContentType.coerce(f"text/plain; name={long_value}")
    assert ctype.param("name") == long_value
    assert ContentType.coerce("text/plain") is ContentType.coerce("text/plain")
    with pytest.raises(TypeError, match=r"^a content type must be a str, not int$"):
        ContentType.coerce(123)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a b", "name*", "", "ä"])
def test_invalid_parameter_names(name: str) -> None:
    with pytest.raises(MessageError, match=f"^invalid parameter name {re.escape(repr(name))}$"):
        ContentType("text/plain").with_param(name, "x")


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("text/plain; a=b;  ", (("a", "b"),)),
        ("text/plain;;; a=b", (("a", "b"),)),
        ('text/plain; a= \t"b c"', (("a", "b c"),)),
        ('text/plain; a="x\\"y\\\\z"', (("a", 'x"y\\z'),)),
        ('text/plain; a=1; b="2"', (("a", "1"), ("b", "2"))),
    ],
)
def test_content_type_parameters_are_parsed(text: str, params: tuple[tuple[str, str]]) -> None:
    assert ContentType(text).params == params


def test_a_text_part_needs_a_str() -> None:
    with pytest.raises(TypeError, match=r"^a text part needs a str, not bytes$"):
        mime.text_part(b"x", mime.TEXT_PLAIN)  # type: ignore[arg-type]


def test_multipart_content_type_has_the_boundary_once_known() -> None:
    part = MultiPart("related", [SinglePart("a", "text/html")], params={"type": "text/html"})
    assert str(part.content_type) == 'multipart/related; type="text/html"'
    resolved = resolve(part)
    assert isinstance(resolved, MultiPart)
    assert resolved.boundary is not None
    assert resolved.content_type.params == (("boundary", resolved.boundary), ("type", "text/html"))


def test_explicit_boundary_is_checked_in_nested_parts() -> None:
    inner = MultiPart.alternative(
        SinglePart("a", "text/plain"),
        SinglePart(b"--outer\r\n", "text/plain", transfer_encoding="7bit"),
    )
    with pytest.raises(MessageError, match=r"^the boundary 'outer' occurs in the content$"):
        resolve(MultiPart.mixed(inner, boundary="outer"))
    safe = MultiPart.mixed(MultiPart.alternative(SinglePart("a", "text/plain")), boundary="outer")
    assert resolve(safe).boundary == "outer"  # type: ignore[union-attr]


def test_multipart_extra_headers_are_written() -> None:
    part = MultiPart("mixed", [SinglePart("a", "text/plain")], headers=[("X-Part", "one")])
    message = Message.builder().from_("a@example.org").to("b@example.org").body(part).build()
    data = message.as_bytes()
    assert re.search(rb'Content-Type: multipart/mixed; boundary="=_\w+"\r\nX-Part: one\r\n', data)
    assert parse(data)["X-Part"] == "one"


def test_message_rfc822_with_8bit_content_is_8bit() -> None:
    inner = b"Subject: h\xc3\xa9\r\n\r\nbody\r\n"
    part = resolve(SinglePart(inner, "message/rfc822"))
    assert part.transfer_encoding is TransferEncoding.EIGHT_BIT  # type: ignore[union-attr]
    long_line = b"Subject: x\r\n\r\n" + b"y" * 1000 + b"\r\n"
    # Too long for 7bit or 8bit: chosen like any other part.
    part = resolve(SinglePart(long_line, "message/rfc822"))
    assert part.transfer_encoding is choose_encoding(ContentType("message/rfc822"), long_line)  # type: ignore[union-attr]
