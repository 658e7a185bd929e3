"""What a server offers: the EHLO reply as :class:`Capabilities`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from lettre.errors import RemoteProtocolError
from lettre.protocol.replies import Reply

__all__ = ["Capabilities"]

# RFC 5321 ehlo-keyword: ALPHA / DIGIT, then ALPHA / DIGIT / "-".
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")


def _no_extensions() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The service extensions a server announced in its EHLO reply.

    ``Capabilities()`` (everything off) describes a HELO session.

    Attributes:
        size: the SIZE limit in octets; ``0`` when SIZE was announced without
            a fixed limit (or with an unreadable one); None when SIZE was not
            announced (then MAIL may not carry ``SIZE=``).
        eightbitmime: 8BITMIME (RFC 6152).
        smtputf8: SMTPUTF8 (RFC 6531).
        pipelining: PIPELINING (RFC 2920).
        chunking: CHUNKING, the BDAT command (RFC 3030).
        binarymime: BINARYMIME (RFC 3030).
        starttls: STARTTLS (RFC 3207).
        dsn: DSN (RFC 3461).
        enhancedstatuscodes: ENHANCEDSTATUSCODES (RFC 2034).
        requiretls: REQUIRETLS (RFC 8689).
        auth: the SASL mechanisms announced by AUTH (and the old ``AUTH=``
            form), upper-case.
        extensions: every keyword announced (upper-case), known or not,
            mapped to its parameters as sent (``""`` when it has none).
    """

    size: int | None = None
    eightbitmime: bool = False
    smtputf8: bool = False
    pipelining: bool = False
    chunking: bool = False
    binarymime: bool = False
    starttls: bool = False
    dsn: bool = False
    enhancedstatuscodes: bool = False
    requiretls: bool = False
    auth: frozenset[str] = frozenset()
    extensions: Mapping[str, str] = field(default_factory=_no_extensions, hash=False)

    @classmethod
    def from_reply(cls, reply: Reply) -> Capabilities:
        """Read the capabilities from a positive EHLO reply.

        The first line (the server's greeting) is skipped; every other line is
        a keyword and its parameters. Lines that are not a valid keyword are
        ignored.

        Args:
            reply: the 250 reply to EHLO.

        Returns:
            The capabilities.

        Raises:
            RemoteProtocolError: when the reply is not a 2xx reply.
        """
        if not 200 <= reply.code < 300:
            raise RemoteProtocolError(f"not a positive EHLO reply: {reply.code}")
        extensions: dict[str, str] = {}
        mechanisms: dict[str, None] = {}  # ordered set
        for line in reply.lines[1:]:
            keyword, _, params = line.strip().partition(" ")
            params = params.strip()
            upper = keyword.upper()
            if upper.startswith("AUTH="):
                # The pre-standard "AUTH=PLAIN LOGIN" form.
                params = f"{keyword[5:]} {params}".strip()
                upper = "AUTH"
            elif _KEYWORD.fullmatch(keyword) is None:
                continue
            if upper == "AUTH":
                for name in params.upper().split():
                    mechanisms[name] = None
                extensions["AUTH"] = " ".join(mechanisms)
            else:
                extensions[upper] = params
        size: int | None = None
        if "SIZE" in extensions:
            raw = extensions["SIZE"].split()
            size = int(raw[0]) if raw and raw[0].isascii() and raw[0].isdigit() else 0
        return cls(
            size=size,
            eightbitmime="8BITMIME" in extensions,
            smtputf8="SMTPUTF8" in extensions,
            pipelining="PIPELINING" in extensions,
            chunking="CHUNKING" in extensions,
            binarymime="BINARYMIME" in extensions,
            starttls="STARTTLS" in extensions,
            dsn="DSN" in extensions,
            enhancedstatuscodes="ENHANCEDSTATUSCODES" in extensions,
            requiretls="REQUIRETLS" in extensions,
            auth=frozenset(mechanisms),
            extensions=MappingProxyType(extensions),
        )

    def supports(self, keyword: str) -> bool:
        """True when ``keyword`` (any case) was announced.

        Args:
            keyword: an EHLO keyword such as ``"PIPELINING"``.
        """
        return keyword.upper() in self.extensions
