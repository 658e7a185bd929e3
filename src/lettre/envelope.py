"""The SMTP envelope: who a message is from and who receives it.

The envelope is what ``MAIL FROM`` and ``RCPT TO`` carry. It usually derives
from the message's headers (Sender or From; To, Cc and Bcc), but it can be
given explicitly, for example for bounces (null reverse path) or for
forwarding to addresses that are not in the headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from lettre._slots import slot_builder
from lettre.address import Address
from lettre.errors import AddressError, MessageError

__all__ = ["DSN_NOTIFY_VALUES", "DSN_RET_VALUES", "MAX_ENVID_LENGTH", "Envelope"]

DSN_NOTIFY_VALUES: Final = frozenset({"NEVER", "SUCCESS", "FAILURE", "DELAY"})
"""The keywords of the RFC 3461 ``NOTIFY`` parameter."""

DSN_RET_VALUES: Final = frozenset({"FULL", "HDRS"})
"""The keywords of the RFC 3461 ``RET`` parameter."""

MAX_ENVID_LENGTH: Final = 100
"""The longest ``ENVID`` allowed (RFC 3461 section 4.4)."""


def _notify(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    keywords: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"NOTIFY keywords are strings, not {type(item).__name__}")
        keyword = item.strip().upper()
        if keyword not in DSN_NOTIFY_VALUES:
            raise MessageError(
                f"unknown DSN NOTIFY keyword {item!r}; use NEVER or any of SUCCESS, FAILURE, DELAY"
            )
        keywords.add(keyword)
    if not keywords:
        raise MessageError("DSN NOTIFY needs at least one keyword (NEVER, SUCCESS, FAILURE, DELAY)")
    if "NEVER" in keywords and len(keywords) > 1:
        raise MessageError("DSN NOTIFY=NEVER cannot be combined with other keywords")
    return frozenset(keywords)


def _ret(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.upper() not in DSN_RET_VALUES:
        raise MessageError(f"DSN RET must be 'FULL' or 'HDRS', not {value!r}")
    return value.upper()


def _envid(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"ENVID must be a str, not {type(value).__name__}")
    if not value or len(value) > MAX_ENVID_LENGTH:
        raise MessageError(f"DSN ENVID must be 1 to {MAX_ENVID_LENGTH} characters long")
    if not all("!" <= ch <= "~" for ch in value):
        raise MessageError("DSN ENVID must be printable ASCII without spaces")
    return value


def _address(value: Address | str, field: str) -> Address:
    """``Address.coerce(value)``; errors name the field (``forward_paths: 'b@@x' ...``)."""
    try:
        return Address.coerce(value)
    except (AddressError, TypeError) as exc:
        raise type(exc)(f"{field}: {exc}") from None


@dataclass(frozen=True, slots=True, init=False)
class Envelope:
    """The reverse path and forward paths of one SMTP transaction, plus DSN options.

    Args:
        reverse_path: the ``MAIL FROM`` address; None or ``""`` for the null
            reverse path ``<>`` (bounces and other automatic replies).
        forward_paths: the ``RCPT TO`` addresses. Duplicates are dropped,
            order is kept; at least one is required.
        notify: RFC 3461 ``NOTIFY``: ``{"NEVER"}`` or a subset of
            ``{"SUCCESS", "FAILURE", "DELAY"}`` (case-insensitive).
        ret: RFC 3461 ``RET``: ``"FULL"`` or ``"HDRS"``.
        envid: RFC 3461 ``ENVID``: printable ASCII, at most 100 characters.
        orcpt: send ``ORCPT=rfc822;<recipient>`` with each ``RCPT``.

    Raises:
        AddressError: an address is invalid.
        MessageError: no forward path, or an invalid DSN option.
    """

    reverse_path: Address | None
    forward_paths: tuple[Address, ...]
    notify: frozenset[str] | None
    ret: str | None
    envid: str | None
    orcpt: bool

    def __init__(
        self,
        reverse_path: Address | str | None,
        forward_paths: Iterable[Address | str],
        *,
        notify: Iterable[str] | None = None,
        ret: str | None = None,
        envid: str | None = None,
        orcpt: bool = False,
    ) -> None:
        if isinstance(forward_paths, (str, Address)):
            forward_paths = (forward_paths,)
        reverse = None if reverse_path is None or reverse_path == "" else reverse_path
        paths = tuple(dict.fromkeys(_address(a, "forward_paths") for a in forward_paths))
        if not paths:
            raise MessageError("an envelope needs at least one recipient (forward path)")
        object.__setattr__(
            self, "reverse_path", _address(reverse, "reverse_path") if reverse else None
        )
        object.__setattr__(self, "forward_paths", paths)
        object.__setattr__(self, "notify", _notify(notify))
        object.__setattr__(self, "ret", _ret(ret))
        object.__setattr__(self, "envid", _envid(envid))
        object.__setattr__(self, "orcpt", bool(orcpt))

    @classmethod
    def _of(cls, reverse_path: Address, forward_paths: Iterable[Address]) -> Envelope:
        """An envelope of already-validated addresses, without DSN options.

        The same as ``Envelope(reverse_path, forward_paths)`` for Address
        objects, without checking them again.

        Raises:
            MessageError: no forward path.
        """
        paths = tuple(forward_paths)
        if len(paths) > 1:
            paths = tuple(dict.fromkeys(paths))
        elif not paths:
            raise MessageError("an envelope needs at least one recipient (forward path)")
        return _build_envelope(reverse_path, paths, None, None, None, False)

    @property
    def needs_smtputf8(self) -> bool:
        """True when any address has a non-ASCII local part."""
        if self.reverse_path is not None and self.reverse_path.needs_smtputf8:
            return True
        return any(a.needs_smtputf8 for a in self.forward_paths)

    @property
    def has_dsn(self) -> bool:
        """True when any DSN option (NOTIFY, RET, ENVID, ORCPT) is set."""
        return (
            self.notify is not None or self.ret is not None or self.envid is not None or self.orcpt
        )


_build_envelope = slot_builder(
    Envelope, "reverse_path", "forward_paths", "notify", "ret", "envid", "orcpt"
)
