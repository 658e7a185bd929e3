"""Hand messages to a local sendmail-compatible program.

The program (``sendmail`` on ``PATH``, else ``/usr/sbin/sendmail``, or any
command you name) is started directly, never through a shell, as::

    <command> -i -f <reverse path> -- <recipient>...

and reads the message on its standard input. Postfix, Exim, OpenSMTPD,
msmtp and Sendmail all accept this form.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from lettre.errors import AddressError, SendmailError
from lettre.hooks import Hook
from lettre.message.source import MessageContent, SourceError
from lettre.transports.base import BaseTransport, RecipientResult, SendResult, Signer

if TYPE_CHECKING:
    from lettre.address import Address
    from lettre.envelope import Envelope

__all__ = ["DEFAULT_TIMEOUT", "MAX_STDERR", "SendmailTransport"]

#: Seconds a send may take, from starting the program to its exit.
DEFAULT_TIMEOUT = 60.0

#: The most bytes of the program's standard error kept for :class:`SendmailError`.
MAX_STDERR = 64 * 1024

_FALLBACK_PATH = "/usr/sbin/sendmail"

# sysexits.h: status -> (name, meaning, transient). Transient follows Postfix's
# classification: only EX_OSERR and EX_TEMPFAIL are worth retrying.
_SYSEXITS: dict[int, tuple[str, str, bool]] = {
    64: ("EX_USAGE", "command line usage error", False),
    65: ("EX_DATAERR", "data format error", False),
    66: ("EX_NOINPUT", "cannot open input", False),
    67: ("EX_NOUSER", "addressee unknown", False),
    68: ("EX_NOHOST", "host name unknown", False),
    69: ("EX_UNAVAILABLE", "service unavailable", False),
    70: ("EX_SOFTWARE", "internal software error", False),
    71: ("EX_OSERR", "system error", True),
    72: ("EX_OSFILE", "critical OS file missing", False),
    73: ("EX_CANTCREAT", "cannot create output file", False),
    74: ("EX_IOERR", "input/output error", False),
    75: ("EX_TEMPFAIL", "temporary failure", True),
    76: ("EX_PROTOCOL", "remote error in protocol", False),
    77: ("EX_NOPERM", "permission denied", False),
    78: ("EX_CONFIG", "configuration error", False),
}

_WRITE_CHUNK = 64 * 1024
_STDERR_IN_MESSAGE = 500
# After a failed exit, how long to keep reading stderr for the end of the
# diagnostics; a background child that inherited stderr may never close it.
_STDERR_GRACE = 2.0

CommandArg = str | os.PathLike[str]


class _BoundedBuffer:
    """Collects at most ``limit`` bytes; counts (and drops) the rest."""

    __slots__ = ("_chunks", "_size", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.total = 0

    def append(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - self._size
        if room > 0:
            kept = chunk[:room]
            self._chunks.append(kept)
            self._size += len(kept)

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)


class _Run:
    """The state of one program run, shared between the send and its tasks."""

    __slots__ = ("failure", "returncode", "stderr", "stderr_done")

    def __init__(self) -> None:
        self.returncode: int | None = None
        self.failure: SourceError | None = None
        self.stderr = _BoundedBuffer(MAX_STDERR)
        self.stderr_done = anyio.Event()


def _checked_address(address: Address, role: str) -> str:
    """Return the address text for the command line, refusing anything option-like."""
    text = str(address)
    if not text:
        raise AddressError(f"empty {role} address cannot be passed to sendmail")
    if text.startswith("-"):
        raise AddressError(
            f"{role} address {text!r} starts with '-' and could be read as a sendmail option"
        )
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0 or char in "\u2028\u2029":
            raise AddressError(
                f"{role} address {text!r} contains the control character U+{code:04X}"
            )
    return text


def _normalise_command(
    command: CommandArg | Sequence[CommandArg] | None,
) -> tuple[str, ...] | None:
    if command is None:
        return None
    if isinstance(command, str | os.PathLike):
        parts: tuple[str, ...] = (os.fspath(command),)
    elif isinstance(command, Sequence) and not isinstance(command, bytes | bytearray):
        parts = tuple(os.fspath(part) for part in command)
    else:
        raise TypeError(
            "command must be a path or a sequence of program and arguments, "
            f"not {type(command).__name__}"
        )
    if not parts or not parts[0]:
        raise ValueError("command must name a program")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError("command arguments must be str or os.PathLike[str]")
        if "\0" in part:
            raise ValueError("command arguments must not contain NUL")
    return parts


def _describe_exit(returncode: int) -> tuple[str, bool]:
    """Return a human description of an exit status and whether it is transient."""
    if returncode < 0:
        # Killed by a signal it did not get from us (OOM killer, an admin...):
        # the program never finished its job, so another attempt may work.
        return f"was killed by signal {-returncode}", True
    known = _SYSEXITS.get(returncode)
    if known is None:
        return f"exited with status {returncode}", False
    name, meaning, transient = known
    return f"exited with status {returncode} ({name}: {meaning})", transient


def _stderr_excerpt(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    if len(text) > _STDERR_IN_MESSAGE:
        text = text[:_STDERR_IN_MESSAGE] + "..."
    return text


async def _drain(stream: anyio.abc.ByteReceiveStream, run: _Run) -> None:
    """Read the program's stderr to its end, keeping a bounded prefix."""
    try:
        async for chunk in stream:
            run.stderr.append(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass  # the pipe went away: the exit status tells the story
    finally:
        run.stderr_done.set()


async def _write(stream: anyio.abc.ByteSendStream, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), _WRITE_CHUNK):
        await stream.send(bytes(view[start : start + _WRITE_CHUNK]))


async def _feed(
    process: anyio.abc.Process, stream: anyio.abc.ByteSendStream, data: bytes | MessageContent
) -> SourceError | None:
    """Write the message to the program's stdin and close it.

    A streamed message is read a chunk at a time in a worker thread. When
    a source cannot be read, the program is killed before its input is
    closed, so that it never takes the truncated message: the error is
    returned.
    """
    try:
        if isinstance(data, bytes):
            await _write(stream, data)
        else:
            chunks = data.chunks()
            try:
                while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                    await _write(stream, chunk)
            finally:
                chunks.close()
    except SourceError as exc:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return exc
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        # The program stopped reading (usually because it is exiting with an
        # error); its exit status is what we report.
        pass
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(anyio.BrokenResourceError, OSError):
                await stream.aclose()
    return None


async def _communicate(process: anyio.abc.Process, data: bytes | MessageContent, run: _Run) -> None:
    """Feed stdin while draining stderr, then wait for the exit."""
    if process.stdin is None or process.stderr is None:  # pragma: no cover - PIPE given
        raise RuntimeError("process pipes are missing")
    async with anyio.create_task_group() as tg:
        tg.start_soon(_drain, process.stderr, run)
        run.failure = await _feed(process, process.stdin, data)
        if run.failure is not None:
            tg.cancel_scope.cancel()
            return
        run.returncode = await process.wait()
        if run.returncode != 0:
            # Collect the rest of the diagnostics for the error. On success
            # stderr does not matter; either way, a background child that
            # inherited stderr must not keep the send waiting for its end.
            with anyio.move_on_after(_STDERR_GRACE):
                await run.stderr_done.wait()
        tg.cancel_scope.cancel()


class SendmailTransport(BaseTransport):
    """Deliver messages by running a local sendmail-compatible program.

    Addresses are passed in their Unicode form: the local sendmail speaks
    SMTPUTF8 (or its equivalent) to itself, and converts domains when it
    relays. A null reverse path leaves ``-f`` out, so the program uses its
    default sender (usually the invoking user).

    Example::

        transport = SendmailTransport()
        result = await transport.send(message)

    Args:
        command: the program to run: a path or program name, or a sequence of
            the program and fixed arguments (``["msmtp", "-C", "msmtprc"]``).
            Defaults to ``sendmail`` on ``PATH``, then ``/usr/sbin/sendmail``.
        timeout: seconds the whole run may take (writing the message and
            waiting for the exit). On timeout the program is killed.
        dkim: one signer or several; each signs the exact bytes sent.
        hooks: :class:`~lettre.hooks.Hook` objects told about every send
            (see :mod:`lettre.hooks`).
    """

    transport_name = "sendmail"
    _streams = True

    def __init__(
        self,
        command: CommandArg | Sequence[CommandArg] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        dkim: Signer | Sequence[Signer] | None = None,
        hooks: Iterable[Hook] | None = None,
    ) -> None:
        super().__init__(dkim=dkim, hooks=hooks)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError("timeout must be a number of seconds")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive, finite number of seconds")
        self._command = _normalise_command(command)
        self._timeout = float(timeout)
        self._resolved: tuple[str, ...] | None = self._command

    def __repr__(self) -> str:
        shown = list(self._command) if self._command is not None else "default"
        return f"SendmailTransport(command={shown!r}, timeout={self._timeout!r})"

    @property
    def timeout(self) -> float:
        """Seconds a send may take before the program is killed."""
        return self._timeout

    def command_line(self, envelope: Envelope) -> list[str]:
        """Return the exact argument vector a send with ``envelope`` runs.

        Args:
            envelope: the reverse path (``-f``) and the recipients.

        Raises:
            AddressError: an address could be mistaken for an option or
                contains control characters.
            SendmailError: no sendmail program was given or found.
        """
        argv = [*self._program(), "-i"]
        if envelope.reverse_path is not None:
            argv += ["-f", _checked_address(envelope.reverse_path, "sender")]
        argv.append("--")
        argv += [_checked_address(rcpt, "recipient") for rcpt in envelope.forward_paths]
        return argv

    def _program(self) -> tuple[str, ...]:
        if self._resolved is None:
            found = shutil.which("sendmail")
            if found is None:
                if not os.path.exists(_FALLBACK_PATH):
                    raise SendmailError(
                        "no sendmail program found: 'sendmail' is not on PATH and "
                        f"{_FALLBACK_PATH} does not exist; pass command= to choose one"
                    )
                found = _FALLBACK_PATH
            self._resolved = (found,)
        return self._resolved

    async def _send_raw(self, envelope: Envelope, data: bytes | MessageContent) -> SendResult:
        """Run the program with ``envelope`` on its command line and ``data`` on stdin.

        Args:
            envelope: the reverse path (``-f``) and the recipients.
            data: the message, written to the program exactly as given; a
                message with streamed attachments is read and written a
                chunk at a time.

        Returns:
            A result in which every recipient is accepted: a zero exit
            means the program took responsibility for the message.

        Raises:
            AddressError: an address cannot be passed safely (see
                :meth:`command_line`); nothing was run.
            SendmailError: the program is missing or not executable, exited
                with a non-zero status (``returncode``, ``stderr``;
                ``transient`` for EX_TEMPFAIL and EX_OSERR), or did not
                finish within the timeout (``returncode`` is None).
            SourceError: a streamed attachment could not be read as the
                message was built; the program was killed before the end of
                its input, so it did not take the message.
        """
        argv = self.command_line(envelope)
        program = argv[0]
        try:
            process = await anyio.open_process(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise SendmailError(f"sendmail program {program!r} not found") from exc
        except PermissionError as exc:
            raise SendmailError(f"sendmail program {program!r} is not executable") from exc
        except OSError as exc:
            raise SendmailError(
                f"cannot run sendmail program {program!r}: {exc.strerror or exc}"
            ) from exc

        run = _Run()
        try:
            with anyio.move_on_after(self._timeout):
                await _communicate(process, data, run)
        finally:
            # Timed out, cancelled or failed: make sure nothing outlives us,
            # and reap the child even if our caller is being cancelled.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            with anyio.CancelScope(shield=True):
                await process.aclose()

        if run.failure is not None:
            raise run.failure
        if run.returncode is None:
            raise SendmailError(
                f"sendmail program {program!r} did not finish within {self._timeout:g} s "
                "and was killed; the message may or may not have been queued",
                stderr=run.stderr.getvalue(),
                transient=True,
                outcome_unknown=True,
            )
        if run.returncode != 0:
            stderr = run.stderr.getvalue()
            description, transient = _describe_exit(run.returncode)
            excerpt = _stderr_excerpt(stderr)
            detail = f": {excerpt}" if excerpt else ""
            raise SendmailError(
                f"sendmail program {program!r} {description}{detail}",
                returncode=run.returncode,
                stderr=stderr,
                transient=transient,
            )
        return SendResult(
            recipients=tuple(
                RecipientResult(recipient=str(rcpt), accepted=True)
                for rcpt in envelope.forward_paths
            )
        )
