"""Attachments read while sending: file sources, message segments, chunk encoders.

An attachment made with :meth:`Attachment.from_path
<lettre.message.Attachment.from_path>` or :meth:`Attachment.from_file
<lettre.message.Attachment.from_file>` holds a :class:`FileSource`: where its
content is, not the content. Serialising such a message for sending
(:meth:`Message.content() <lettre.message.Message.content>`) gives a
:class:`MessageContent`: a sequence of segments, bytes and
:class:`SourceSegment`, in order. Its :meth:`~MessageContent.chunks` reads
each source in bounded pieces of :data:`CHUNK_SIZE` octets and base64-encodes
them with :func:`encode_base64_chunk`, so a message of any size is sent with
a few hundred KiB of memory.

The reading is blocking: transports run :meth:`MessageContent.chunks` in a
worker thread, a chunk at a time, never in the event loop's thread. Nothing
in this module imports an I/O library.

A source is checked when the message is built (the file exists and is a
regular file; its size and modification time are recorded) and every time
it is read: a file that changed since (another size or modification time),
that cannot be read, or a file object that cannot be read a second time
raises :class:`SourceError`, and the transport sending it abandons the send
rather than send a wrong or truncated message.
"""

from __future__ import annotations

import binascii
import io
import os
import stat
import threading
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from lettre.errors import SourceError

__all__ = [
    "CHUNK_SIZE",
    "FileSource",
    "MessageContent",
    "SourceError",
    "SourceReader",
    "SourceSegment",
    "encode_base64",
    "encode_base64_chunk",
    "encoded_base64_size",
]

CHUNK_SIZE: Final = 57 * 4096
"""Octets read from a source at a time: 4096 whole base64 lines (228 KiB; 312 KiB encoded)."""

_LINE: Final = 57  # octets per 76-column base64 line


def encoded_base64_size(size: int) -> int:
    """The length of :func:`encode_base64_chunk` of ``size`` octets (76-column CRLF lines)."""
    lines, rest = divmod(size, _LINE)
    return lines * 78 + ((rest + 2) // 3 * 4 + 2 if rest else 0)


def encode_base64_chunk(data: bytes) -> bytes:
    """Base64 in 76-column CRLF lines, the same as the serializer writes it.

    Chunks whose length is a multiple of 57 octets give whole lines, so the
    encodings of consecutive chunks, joined, are the encoding of the whole;
    only the last chunk may have another length.

    Args:
        data: a chunk of raw content.

    Returns:
        The encoded lines, each ending with CRLF (``b""`` for no data).
    """
    out: list[bytes | bytearray] = []
    encode_base64(data, out)
    return b"".join(out)


def encode_base64(data: bytes, out: list[bytes | bytearray]) -> None:
    """Append the base64 form of ``data`` to ``out`` in 76-column CRLF lines.

    The payload is encoded in large blocks with :func:`binascii.b2a_base64`
    and cut into lines with strided slice assignment, so no per-line Python
    work is done and memory stays at the size of the output.
    """
    if not data:
        return
    lines_per_block = 4096
    step = 57 * lines_per_block
    view = memoryview(data)
    b2a = binascii.b2a_base64
    full_cr = b"\r" * lines_per_block
    full_lf = b"\n" * lines_per_block
    for start in range(0, len(data), step):
        encoded = b2a(view[start : start + step], newline=False)
        lines, rest = divmod(len(encoded), 76)
        if lines:
            block = bytearray(78 * lines)
            for column in range(76):
                block[column::78] = encoded[column : 76 * lines : 76]
            if lines == lines_per_block:
                block[76::78] = full_cr
                block[77::78] = full_lf
            else:
                block[76::78] = b"\r" * lines
                block[77::78] = b"\n" * lines
            out.append(block)
        if rest:
            out.append(encoded[76 * lines :] + b"\r\n")
    view.release()


class FileSource:
    """Where a streamed attachment's content comes from: a file path, or a binary file object.

    Made by :meth:`Attachment.from_path <lettre.message.Attachment.from_path>`
    and :meth:`Attachment.from_file <lettre.message.Attachment.from_file>`;
    read by :meth:`open`, each time the message is sent (and once more
    before, for a DKIM signature).

    Attributes:
        path: the file, for a path source.
        file: the file object, for a file object source.
        size: the content's size in octets, when known (a path, or a
            seekable file object: from its position when the message was
            built to its end); None for a non-seekable file object.
    """

    __slots__ = ("_lock", "_mtime_ns", "_opened", "_start", "file", "path", "size")

    path: Path | None
    file: BinaryIO | None
    size: int | None

    def __init__(self, path: Path | None, file: BinaryIO | None, size: int | None) -> None:
        self.path = path
        self.file = file
        self.size = size
        self._mtime_ns: int | None = None
        self._start = 0
        self._opened = False
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> FileSource:
        """A source for the regular file at ``path``; its size and time are recorded now.

        Raises:
            SourceError: the file does not exist, is not a regular file, or
                cannot be examined.
            TypeError: ``path`` is not a str or path object.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"a path must be a str or a path object, not {type(path).__name__}")
        file = Path(path)
        try:
            info = file.stat()
        except OSError as exc:
            raise SourceError(f"cannot attach {os.fspath(file)!r}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise SourceError(f"cannot attach {os.fspath(file)!r}: it is not a regular file")
        source = cls(file, None, info.st_size)
        source._mtime_ns = info.st_mtime_ns
        return source

    @classmethod
    def from_file(cls, file: BinaryIO) -> FileSource:
        """A source for a binary file object, read from its current position.

        A seekable object is read from that position every time; a
        non-seekable one (a pipe, a socket file) can be read once only.

        Raises:
            TypeError: ``file`` has no ``read`` method, or is a text file.
            SourceError: its position or size cannot be found.
        """
        if not callable(getattr(file, "read", None)) or isinstance(file, io.TextIOBase):
            raise TypeError(
                f"from_file() takes a binary file object (opened with 'rb'), not "
                f"{type(file).__name__}"
            )
        size: int | None = None
        start = 0
        seekable = getattr(file, "seekable", None)
        if callable(seekable) and seekable():
            try:
                start = file.tell()
                size = file.seek(0, os.SEEK_END) - start
                file.seek(start)
            except (OSError, ValueError) as exc:
                raise SourceError(f"cannot find the size of {file!r}: {exc}") from exc
        source = cls(None, file, size)
        source._start = start
        return source

    @property
    def name(self) -> str:
        """How error messages name the source: the path, or the file object's repr."""
        if self.path is not None:
            return repr(os.fspath(self.path))
        return repr(self.file)

    @property
    def seekable(self) -> bool:
        """Whether the source can be read more than once (a path, or a seekable file object)."""
        return self.path is not None or self.size is not None

    def open(self) -> SourceReader:
        """Start reading the content from its beginning (blocking).

        Raises:
            SourceError: the file is gone, changed since the message was
                built, cannot be read, or a non-seekable file object was read
                before; or the file object is being read by another send.
        """
        if self.path is not None:
            return self._open_path(self.path)
        file = self.file
        assert file is not None
        if not self._lock.acquire(blocking=False):
            raise SourceError(
                f"the file object {self.name} is being read by another send; "
                "send a message with a file object source once at a time"
            )
        try:
            self._rewind(file)
        except BaseException:
            self._lock.release()
            raise
        return SourceReader(self, file, self._lock)

    def _rewind(self, file: BinaryIO) -> None:
        if self.size is None:
            if self._opened:
                raise SourceError(
                    f"the file object {self.name} is not seekable and was read already: "
                    "DKIM signing and retries need a seekable file (or a path)"
                )
        else:
            try:
                file.seek(self._start)
            except (OSError, ValueError) as exc:
                raise SourceError(f"cannot rewind {self.name}: {exc}") from exc
        self._opened = True

    def _open_path(self, path: Path) -> SourceReader:
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            raise SourceError(
                f"cannot read the attachment {self.name}: {exc.strerror or exc}"
            ) from exc
        handle = os.fdopen(fd, "rb", buffering=0)
        try:
            self.check(os.fstat(fd))
        except BaseException:
            handle.close()
            raise
        return SourceReader(self, handle, None)

    def check(self, info: os.stat_result) -> None:
        """Raise :class:`SourceError` unless ``info`` shows the file as it was at build time."""
        if info.st_size != self.size or info.st_mtime_ns != self._mtime_ns:
            raise SourceError(
                f"the attachment {self.name} changed since the message was built "
                f"(size {self.size} -> {info.st_size}, or its modification time); "
                "nothing more of the message was sent"
            )

    def __repr__(self) -> str:
        return f"<FileSource {self.name} size={self.size}>"


class SourceReader:
    """Reads one pass over a :class:`FileSource` (blocking); made by :meth:`FileSource.open`.

    At the end of the content it checks that exactly the expected number of
    octets came (and, for a path, that the file did not change meanwhile).
    """

    __slots__ = ("_file", "_lock", "_read", "_source")

    def __init__(self, source: FileSource, file: BinaryIO, lock: threading.Lock | None) -> None:
        self._source = source
        self._file = file
        self._lock = lock
        self._read = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` octets (fewer only at the end); ``b""`` at the end.

        Raises:
            SourceError: the read failed, or the content is shorter or longer
                than when the message was built.
        """
        expected = self._source.size
        if expected is not None:
            size = min(size, expected - self._read)
        parts: list[bytes] = []
        got = 0
        try:
            if size <= 0:
                # Everything expected was read: one octet more means it grew.
                if self._file.read(1):
                    self._read += 1
                self._end()
                return b""
            while got < size:
                data = self._file.read(size - got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except (OSError, ValueError) as exc:
            raise SourceError(f"reading the attachment {self._source.name} failed: {exc}") from exc
        self._read += got
        if not got:
            self._end()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _end(self) -> None:
        source = self._source
        expected = source.size
        if expected is not None and self._read != expected:
            raise SourceError(
                f"the attachment {source.name} changed since the message was built "
                f"({expected} octets then, {'more' if self._read > expected else self._read} "
                "when read); nothing more of the message was sent"
            )
        if source.path is not None:
            try:
                info = os.fstat(self._file.fileno())
            except OSError as exc:  # pragma: no cover - the descriptor is open
                raise SourceError(f"reading the attachment {source.name} failed: {exc}") from exc
            source.check(info)

    def close(self) -> None:
        """Release the file (a path's descriptor is closed; a file object stays open)."""
        if self._source.path is not None:
            self._file.close()  # the reader's own descriptor
            return
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()  # a file object stays open; the next send may read it

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SourceSegment(NamedTuple):
    """A streamed part's content in a :class:`MessageContent`: read and encoded while sending."""

    source: FileSource
    """Where the content is."""
    encoding: str
    """The transfer encoding applied to it: ``"base64"`` (a ``TransferEncoding``)."""

    @property
    def size(self) -> int | None:
        """The encoded size in octets, when the source's size is known."""
        size = self.source.size
        return None if size is None else encoded_base64_size(size)


Segment = bytes | SourceSegment


class MessageContent:
    """A message whose streamed attachments are read while it is sent.

    The segments are bytes and :class:`SourceSegment` objects in order;
    joined, with each source read and base64-encoded, they are the bytes of
    :meth:`Message.as_bytes() <lettre.message.Message.as_bytes>`.
    :meth:`chunks` reads them a bounded chunk at a time.

    Args:
        segments: the pieces, in order (adjacent bytes are joined).

    Attributes:
        segments: the pieces, bytes and sources alternating.
        size: the total size in octets, or None when a source's size is not
            known (a non-seekable file object).
    """

    __slots__ = ("segments", "size")

    segments: tuple[Segment, ...]
    size: int | None

    def __init__(self, segments: Iterable[bytes | bytearray | SourceSegment]) -> None:
        merged: list[Segment] = []
        pending: list[bytes | bytearray] = []
        size: int | None = 0
        for segment in segments:
            if isinstance(segment, SourceSegment):
                if pending:
                    merged.append(b"".join(pending))
                    pending = []
                merged.append(segment)
                part = segment.size
                size = None if size is None or part is None else size + part
            elif segment:
                pending.append(segment)
                if size is not None:
                    size += len(segment)
        if pending:
            merged.append(b"".join(pending))
        self.segments = tuple(merged)
        self.size = size

    @property
    def head(self) -> bytes:
        """The bytes before the first source (the header section and the start of the body)."""
        first = self.segments[0] if self.segments else b""
        return first if isinstance(first, bytes) else b""

    @property
    def seekable(self) -> bool:
        """Whether every source can be read more than once (DKIM, retries)."""
        return all(s.source.seekable for s in self.segments if isinstance(s, SourceSegment))

    def prepend(self, data: bytes) -> MessageContent:
        """A content with ``data`` (such as a signature header field) before these segments."""
        return MessageContent((data, *self.segments))

    def chunks(self, chunk_size: int = CHUNK_SIZE) -> Generator[bytes, None, None]:
        """The message's bytes, in order, reading each source ``chunk_size`` octets at a time.

        Blocking: run it in a worker thread. Close the iterator (``close()``)
        when stopping early, so that the file being read is released.

        Args:
            chunk_size: octets read from a source at a time; rounded down to
                a multiple of 57 (whole base64 lines), at least 57.

        Raises:
            SourceError: a source cannot be read as the message was built.
        """
        raw = max(chunk_size // _LINE, 1) * _LINE
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            with segment.source.open() as reader:
                while True:
                    data = reader.read(raw)
                    if not data:
                        break
                    yield encode_base64_chunk(data)

    def read_all(self) -> bytes:
        """Every byte of the message at once (blocking; holds the whole message in memory).

        Raises:
            SourceError: a source cannot be read as the message was built.
        """
        return b"".join(self.chunks())

    def __repr__(self) -> str:
        sources = sum(isinstance(s, SourceSegment) for s in self.segments)
        count = len(self.segments)
        return f"<MessageContent {count} segments, {sources} sources, size={self.size}>"
