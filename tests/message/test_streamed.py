"""Streamed attachments in the message layer: segments, chunk encoding, sources and their checks."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from lettre.message import (
    Attachment,
    FileSource,
    Message,
    MessageBuilder,
    MessageContent,
    MultiPart,
    SinglePart,
    SourceError,
)
from lettre.message.source import (
    CHUNK_SIZE,
    SourceSegment,
    encode_base64,
    encode_base64_chunk,
    encoded_base64_size,
)
from streamed_support import FailingFile

from .conftest import assert_wire_format, parse


def base() -> MessageBuilder:
    return Message.builder().from_("a@example.org").to("b@example.com").subject("files")


def write(path: Path, size: int, seed: int = 1) -> bytes:
    data = bytes((i * 7 + seed) % 256 for i in range(size))
    path.write_bytes(data)
    return data


class _Pipe(io.RawIOBase):
    """A readable, non-seekable binary stream (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# -- segments and bytes ------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 1000, 57 * 4096 + 3, 3 * CHUNK_SIZE - 1])
def test_streamed_bytes_equal_the_in_memory_message(tmp_path: Path, size: int) -> None:
    data = write(tmp_path / "report.pdf", size)
    streamed = (
        base()
        .text("see attached\n")
        .attach(Attachment.from_path(tmp_path / "report.pdf"))
        .attach(Attachment.from_file(io.BytesIO(b"abc" * 50), "b.txt"))
        .build()
    )
    content = streamed.content()
    assert isinstance(content, MessageContent)
    whole = streamed.as_bytes()
    assert content.size == len(whole)
    assert b"".join(content.chunks(57 * 10)) == whole
    assert b"".join(content.chunks(1)) == whole
    assert content.read_all() == whole
    parsed = parse(whole)
    assert_wire_format(whole)
    first, second = list(parsed.iter_attachments())
    assert first.get_content() == data
    assert first.get_filename() == "report.pdf"
    assert first.get_content_type() == "application/pdf"
    assert second.get_content() == "abc" * 50


def test_segments_keep_the_sources_and_join_the_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a.bin", 100)
    message = base().text("x\n").attach(Attachment.from_path(tmp_path / "a.bin")).build()
    content = message.content()
    assert isinstance(content, MessageContent)
    kinds = [type(s) for s in content.segments]
    assert kinds == [bytes, SourceSegment, bytes]
    source = content.segments[1]
    assert isinstance(source, SourceSegment)
    assert source.encoding == "base64"
    assert source.size == encoded_base64_size(100)
    assert content.head.startswith(b"Date: ")
    assert content.seekable
    assert "1 sources" in repr(content)
    assert repr(source.source).startswith("<FileSource ")
    signed = content.prepend(b"X-Sig: 1\r\n")
    assert signed.read_all() == b"X-Sig: 1\r\n" + content.read_all()
    assert MessageContent([]).head == b""
    assert MessageContent([b"", b"a", bytearray(b"b")]).segments == (b"ab",)
    assert MessageContent([source]).head == b""


def test_a_message_without_streamed_parts_is_bytes() -> None:
    message = base().text("x\n").attach(b"data", "d.bin").build()
    assert message.content() == message.as_bytes()
    headers_only = base().build()
    assert headers_only.content() == headers_only.as_bytes()
    plain = base().text("hi\n").build()
    assert plain.content() == plain.as_bytes()
    empty = base().text("").build()
    assert empty.content() == empty.as_bytes()


def test_a_streamed_part_as_the_whole_body(tmp_path: Path) -> None:
    write(tmp_path / "only.png", 500)
    message = base().body(Attachment.from_path(tmp_path / "only.png").to_part()).build()
    content = message.content()
    assert isinstance(content, MessageContent)
    assert content.read_all() == message.as_bytes()
    assert parse(message.as_bytes()).get_content_type() == "image/png"


def test_an_empty_file_and_an_explicit_boundary(tmp_path: Path) -> None:
    write(tmp_path / "empty.txt", 0)
    (tmp_path / "full.txt").write_bytes(b"0123456789")
    body = MultiPart(
        "mixed",
        [
            SinglePart.plain("body"),
            Attachment.from_path(tmp_path / "empty.txt"),
            Attachment.from_path(tmp_path / "full.txt"),
        ],
        boundary="fixed-boundary",
    )
    message = base().body(body).build()
    data = message.as_bytes()
    assert_wire_format(data)
    parts = list(parse(data).iter_attachments())
    assert [p.get_content() for p in parts] == ["", "0123456789"]


def test_needs_8bitmime_and_inline_sources(tmp_path: Path) -> None:
    write(tmp_path / "logo.gif", 30)
    message = (
        base()
        .html('<img src="cid:logo">')
        .attach(Attachment.from_path(tmp_path / "logo.gif", inline=True, content_id="logo"))
        .build()
    )
    assert not message.needs_8bitmime
    part = list(parse(message.as_bytes()).walk())[-1]
    assert part["Content-ID"] == "<logo>"
    assert part.get_content_disposition() == "inline"


# -- the chunk encoder -------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 2, 3, 56, 57, 58, 114, 1000, 57 * 4096 + 1])
def test_chunk_encoding_joins_into_the_whole(size: int) -> None:
    data = os.urandom(size)
    out: list[bytes | bytearray] = []
    encode_base64(data, out)
    whole = b"".join(out)
    assert encode_base64_chunk(data) == whole
    assert len(whole) == encoded_base64_size(size)
    pieces = [data[i : i + 57 * 3] for i in range(0, size, 57 * 3)]
    assert b"".join(encode_base64_chunk(p) for p in pieces) == whole


# -- sources -----------------------------------------------------------------


def test_from_path_checks_the_file_at_build(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.pdf"):
        Attachment.from_path(tmp_path / "missing.pdf")
    with pytest.raises(SourceError, match="not a regular file"):
        Attachment.from_path(tmp_path)
    with pytest.raises(TypeError, match="path"):
        FileSource.from_path(b"bytes")  # type: ignore[arg-type]
    write(tmp_path / "Räkning.pdf", 4)
    attachment = Attachment.from_path(
        str(tmp_path / "Räkning.pdf"), filename="x.bin", content_type="application/x-custom"
    )
    assert attachment.filename == "x.bin"
    assert attachment.content_type.essence == "application/x-custom"
    assert attachment.data == b""
    assert attachment.source is not None
    assert attachment.source.size == 4
    assert Attachment(b"x").source is None


def test_a_file_changed_after_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    write(path, 1000)
    message = base().attach(Attachment.from_path(path)).build()
    with path.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(SourceError, match="changed since the message was built"):
        message.as_bytes()
    path.unlink()
    with pytest.raises(SourceError, match="cannot read the attachment"):
        message.as_bytes()


def test_a_file_that_changes_while_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    write(path, 57 * 20)
    source = FileSource.from_path(path)
    reader = source.open()
    assert len(reader.read(57)) == 57
    with path.open("r+b") as handle:
        handle.truncate(57 * 10)
    assert len(reader.read(57 * 9)) == 57 * 9
    with pytest.raises(SourceError, match="changed since the message was built"):
        reader.read(57)
    reader.close()
    # Grown meanwhile: one octet more than expected.
    write(path, 57 * 2)
    source = FileSource.from_path(path)
    with source.open() as reader:
        assert len(reader.read(57 * 2)) == 57 * 2
        with path.open("ab") as handle:
            handle.write(b"!")
        with pytest.raises(SourceError, match="more"):
            reader.read(57)


def test_same_size_new_mtime_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    write(path, 100)
    source = FileSource.from_path(path)
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    with pytest.raises(SourceError, match="modification time"):
        source.open()


def test_file_objects_are_read_from_their_position(tmp_path: Path) -> None:
    buffer = io.BytesIO(b"skip" + b"payload" * 30)
    buffer.seek(4)
    attachment = Attachment.from_file(buffer, "p.txt")
    message = base().attach(attachment).build()
    first = message.as_bytes()
    assert message.as_bytes() == first  # read again from the same position
    (part,) = parse(first).iter_attachments()
    assert part.get_content() == "payload" * 30
    with (tmp_path / "named.csv").open("wb") as handle:
        handle.write(b"a,b\r\n")
    with (tmp_path / "named.csv").open("rb") as handle:
        named = Attachment.from_file(handle)
        assert named.filename == "named.csv"
        assert named.content_type.essence == "text/csv"
    assert Attachment.from_file(io.BytesIO(b"")).filename is None
    with pytest.raises(TypeError, match="binary file object"):
        Attachment.from_file(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary file object"):
        Attachment.from_file(b"bytes")  # type: ignore[arg-type]


def test_a_non_seekable_file_object_is_read_once() -> None:
    pipe = io.BufferedReader(_Pipe(b"stream" * 1000))
    attachment = Attachment.from_file(pipe, "s.bin")
    assert attachment.source is not None
    assert attachment.source.size is None
    assert not attachment.source.seekable
    message = base().attach(attachment).build()
    content = message.content()
    assert isinstance(content, MessageContent)
    assert content.size is None
    assert not content.seekable
    (part,) = parse(content.read_all()).iter_attachments()
    assert part.get_content() == b"stream" * 1000
    with pytest.raises(SourceError, match="not seekable and was read already"):
        message.as_bytes()


def test_file_object_errors_are_source_errors() -> None:
    failing = FailingFile(b"x" * 5000, limit=100)
    message = base().attach(Attachment.from_file(failing, "f.bin")).build()
    with pytest.raises(SourceError, match="Input/output error"):
        message.as_bytes()
    # The lock was released: the next read fails the same way, not as busy.
    with pytest.raises(SourceError, match="Input/output error"):
        message.as_bytes()
    closed = io.BytesIO(b"abc")
    source = FileSource.from_file(closed)
    closed.close()
    with pytest.raises(SourceError, match="cannot rewind"):
        source.open()


class _Unsizable(io.BytesIO):
    def seek(self, offset: int, whence: int = 0) -> int:
        raise OSError(29, "Illegal seek")


def test_a_file_object_whose_size_cannot_be_found() -> None:
    with pytest.raises(SourceError, match="cannot find the size"):
        FileSource.from_file(_Unsizable(b"abc"))


def test_one_send_at_a_time_reads_a_file_object() -> None:
    source = FileSource.from_file(io.BytesIO(b"abc"))
    with source.open() as reader:
        with pytest.raises(SourceError, match="being read by another send"):
            source.open()
        assert reader.read(10) == b"abc"
        assert reader.read(10) == b""
    with source.open() as again:
        assert again.read(10) == b"abc"
        again.close()  # closing twice releases once
    assert not source.file.closed  # type: ignore[union-attr]
    source.open().close()


def test_a_truncated_file_object_is_refused() -> None:
    buffer = io.BytesIO(b"abcdef")
    source = FileSource.from_file(buffer)
    buffer.truncate(3)
    with source.open() as reader:
        assert reader.read(10) == b"abc"
        with pytest.raises(SourceError, match="6 octets then, 3"):
            reader.read(10)


def test_a_failing_read_of_a_path_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    write(path, 10)
    source = FileSource.from_path(path)
    reader = source.open()
    reader._file.close()  # the descriptor goes away under the reader
    with pytest.raises(SourceError, match="failed"):
        reader.read(10)
    assert "a.bin" in source.name


class _Prefix:
    def sign(self, data: bytes) -> bytes:
        return b"X-Signed: yes\r\n" + data


@pytest.mark.parametrize(
    "make",
    [
        lambda: base().build(),
        lambda: base().text("hi\n").build(),
        lambda: base().body(SinglePart(b"no final line break", "text/plain")).build(),
        lambda: base().body(SinglePart(b"ends\r\n", "text/plain")).build(),
        lambda: (
            base().body(SinglePart(b"caf\xc3\xa9 au lait", "text/plain; charset=utf-8")).build()
        ),
        lambda: base().body(SinglePart(b"caf\xc3\xa9 au lait\r\n", "text/plain")).build(),
        lambda: base().body(SinglePart(b"\xff\x00" * 40)).build(),
        lambda: base().text("a\n").html("<p>b</p>\n").attach(b"c", "c.bin").build(),
        lambda: base().text("signed\n").build().sign(_Prefix()),
    ],
)
def test_content_is_as_bytes_without_streamed_parts(make: object) -> None:
    message = make()  # type: ignore[operator]
    content = message.content()
    assert isinstance(content, bytes)
    assert content == message.as_bytes()


def test_payloads_read_streamed_attachments_after_checking_the_size(tmp_path: Path) -> None:
    from lettre.message.payload import PayloadTooLarge, message_from_payload, message_to_payload

    data = write(tmp_path / "small.bin", 3000)
    message = base().text("x\n").attach(Attachment.from_path(tmp_path / "small.bin")).build()
    again = message_from_payload(message_to_payload(message))
    assert again.as_bytes() == message.as_bytes()
    (part,) = parse(again.as_bytes()).iter_attachments()
    assert part.get_content() == data
    (tmp_path / "small.bin").unlink()
    # Too large: refused from the known size, without reading the (now missing) file.
    with pytest.raises(PayloadTooLarge):
        message_to_payload(message, max_size=1000)
    pipe = io.BufferedReader(_Pipe(b"p" * 5000))
    unsized = base().attach(Attachment.from_file(pipe, "p.bin")).build()
    with pytest.raises(PayloadTooLarge):
        message_to_payload(unsized, max_size=1000)
