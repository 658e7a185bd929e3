"""A message's bytes, parsed into the parts a JSON email API asks for.

The JSON APIs (Postmark, SendGrid, Resend) do not take a MIME message: they
take its sender, recipients, subject, bodies, attachments and extra headers
as fields, and build the message again themselves. :func:`parse_message`
reads those parts from the serialised bytes with the stdlib parser, so a
lettre ``Message``, a stdlib ``EmailMessage`` and bytes given to
``send_raw`` all take the one same path. The envelope decides who receives
the message: To and Cc keep the addresses of those headers, and every other
envelope recipient is Bcc.
"""

from __future__ import annotations

import email.policy
import mimetypes
import re
from dataclasses import dataclass, field
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING

from lettre.address import Address
from lettre.transports.http.base import HttpApiError

if TYPE_CHECKING:
    from lettre.envelope import Envelope

__all__ = ["ApiAddress", "ApiAttachment", "ParsedMessage", "parse_message"]

# Header fields that the APIs carry in fields of their own, or set themselves.
_NOT_CUSTOM = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "content-description",
        "return-path",
        "received",
    }
)
_PHRASE_SPECIALS = frozenset('()<>[]:;@\\,."')
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_PARSER = BytesParser(policy=email.policy.default)


@dataclass(frozen=True, slots=True)
class ApiAddress:
    """An address as the APIs take it.

    Attributes:
        email: the address; the domain in A-labels unless the local part is
            non-ASCII (then as it is, for a service that supports it).
        name: the display name, if any.
    """

    email: str
    name: str | None = None

    @property
    def formatted(self) -> str:
        """``Name <email>`` (the name quoted when it needs it), or the bare address."""
        if not self.name:
            return self.email
        name = self.name
        if not _PHRASE_SPECIALS.isdisjoint(name):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{self.email}>"


@dataclass(frozen=True, slots=True)
class ApiAttachment:
    """One attachment (or inline part).

    Attributes:
        filename: the file name (one is made up for a part without one).
        content_type: the MIME type, such as ``image/png``.
        content: the decoded bytes.
        content_id: the Content-ID without angle brackets, for inline parts.
        inline: True for a part shown in the body (``cid:`` images).
    """

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The parts of one message that a JSON email API takes.

    Attributes:
        from_: the author (the From header's one mailbox).
        to: the To recipients that are in the envelope, in header order.
        cc: the Cc recipients that are in the envelope.
        bcc: every other envelope recipient.
        reply_to: the Reply-To mailboxes.
        subject: the subject, decoded ("" without one).
        text: the plain text body, if any.
        html: the HTML body, if any.
        attachments: every other leaf part.
        headers: the other header fields (Message-ID, In-Reply-To,
            List-Unsubscribe, X-...), decoded and unfolded, in order.
    """

    from_: ApiAddress
    to: tuple[ApiAddress, ...]
    cc: tuple[ApiAddress, ...]
    bcc: tuple[ApiAddress, ...]
    reply_to: tuple[ApiAddress, ...]
    subject: str
    text: str | None
    html: str | None
    attachments: tuple[ApiAttachment, ...]
    headers: tuple[tuple[str, str], ...]

    def headers_as_dict(self, service: str) -> dict[str, str]:
        """The extra headers as a mapping, for APIs that take one value per name.

        Raises:
            HttpApiError: a header field appears twice.
        """
        result: dict[str, str] = {}
        seen: set[str] = set()
        for name, value in self.headers:
            if name.lower() in seen:
                raise HttpApiError(
                    f"the message has the {name} header field more than once; {service}'s "
                    "API takes one value per header name",
                    service=service,
                    code="repeated_header",
                    transient=False,
                )
            seen.add(name.lower())
            result[name] = value
        return result


def _key(address: Address) -> tuple[str, str]:
    # Local parts are case-sensitive in principle, and never in practice: a
    # header's Bob@ and an envelope's bob@ are one recipient.
    return address.local_part.casefold(), address.ascii_domain.lower()


def _api_email(address: Address) -> str:
    return str(address) if address.needs_smtputf8 else address.to_ascii()


def _header_addresses(message: EmailMessage, name: str) -> list[tuple[Address, str | None]]:
    found: list[tuple[Address, str | None]] = []
    for header in message.get_all(name, []):
        for item in getattr(header, "addresses", ()):
            assert isinstance(item, HeaderAddress)
            if not item.addr_spec or not item.domain:
                continue
            found.append((Address(item.addr_spec), item.display_name or None))
    return found


def _text(part: EmailMessage) -> str:
    content = part.get_content()
    if isinstance(content, bytes):  # pragma: no cover - text parts decode to str
        return content.decode("utf-8", "replace")
    return str(content)


def _content(part: EmailMessage) -> bytes:
    if part.get_content_maintype() == "message":
        inner = part.get_payload(0)
        assert isinstance(inner, EmailMessage)
        return inner.as_bytes(policy=email.policy.default.clone(linesep="\r\n"))
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _leaves(part: EmailMessage) -> list[EmailMessage]:
    if part.get_content_maintype() == "multipart":
        leaves: list[EmailMessage] = []
        for child in part.iter_parts():
            assert isinstance(child, EmailMessage)
            leaves.extend(_leaves(child))
        return leaves
    return [part]


def parse_message(envelope: Envelope, data: bytes, service: str) -> ParsedMessage:
    """Read the parts a JSON API takes from a message's bytes.

    Args:
        envelope: who receives the message: To and Cc keep the header's
            addresses (with their names); the other recipients are Bcc.
        data: the message bytes.
        service: the service's name, for error messages.

    Returns:
        The parsed parts.

    Raises:
        HttpApiError: the message cannot be sent through a JSON API as it
            is: it has no From, several, a DKIM signature (which the
            rebuilt message would break), a To or Cc address that is not an
            envelope recipient (the API would deliver to it), or no To
            recipient at all (the APIs need one). Permanent.
        AddressError: an address in the header is invalid.
    """

    def refuse(message: str, code: str) -> HttpApiError:
        return HttpApiError(message, service=service, code=code, transient=False)

    message = _PARSER.parsebytes(data)
    assert isinstance(message, EmailMessage)
    if "DKIM-Signature" in message:
        raise refuse(
            f"the message carries a DKIM-Signature, which {service}'s API cannot keep: it "
            "builds the message again from JSON. Send it unsigned (the service signs with "
            "your domain's key), or through MailgunTransport or SMTP",
            "dkim_not_supported",
        )
    authors = _header_addresses(message, "From")
    if len(authors) != 1:
        raise refuse(
            f"{service}'s API takes exactly one From address; the message has {len(authors)}",
            "from_count",
        )
    author, author_name = authors[0]

    wanted = {_key(a): a for a in envelope.forward_paths}
    placed: set[tuple[str, str]] = set()

    def recipients(name: str) -> tuple[ApiAddress, ...]:
        chosen: list[ApiAddress] = []
        for address, display in _header_addresses(message, name):
            key = _key(address)
            if key not in wanted:
                raise refuse(
                    f"the {name} header names {address}, who is not a recipient of the "
                    f"envelope; {service}'s API delivers to every To and Cc address, so it "
                    "cannot send to only some of them: send with the message's own envelope, "
                    "or through MailgunTransport or SMTP",
                    "envelope_mismatch",
                )
            if key not in placed:
                placed.add(key)
                chosen.append(ApiAddress(_api_email(address), display))
        return tuple(chosen)

    to = recipients("To")
    cc = recipients("Cc")
    bcc = tuple(ApiAddress(_api_email(a)) for key, a in wanted.items() if key not in placed)
    if not to:
        raise refuse(
            f"{service}'s API needs at least one To recipient; the message has none in the "
            "envelope (only Cc or Bcc)",
            "no_to_recipient",
        )
    reply_to = tuple(
        ApiAddress(_api_email(a), name) for a, name in _header_addresses(message, "Reply-To")
    )

    text: str | None = None
    html: str | None = None
    attachments: list[ApiAttachment] = []
    for index, part in enumerate(_leaves(message), start=1):
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition != "attachment" and filename is None:
            if content_type == "text/plain" and text is None:
                text = _text(part)
                continue
            if content_type == "text/html" and html is None:
                html = _text(part)
                continue
        raw_id = part.get("Content-ID")
        content_id = (str(raw_id).strip().strip("<>").strip() or None) if raw_id else None
        if filename is None:
            stem = content_id if content_id is not None else f"part-{index}"
            filename = f"{stem}{mimetypes.guess_extension(content_type) or '.bin'}"
        attachments.append(
            ApiAttachment(
                filename=filename,
                content_type=content_type,
                content=_content(part),
                content_id=content_id,
                inline=disposition == "inline" or (disposition is None and content_id is not None),
            )
        )

    headers: list[tuple[str, str]] = []
    for name, value in message.items():
        if name.lower() in _NOT_CUSTOM:
            continue
        headers.append((name, _FOLD.sub("", str(value)).strip()))

    raw_subject = message.get("Subject")
    return ParsedMessage(
        from_=ApiAddress(_api_email(author), author_name),
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=_FOLD.sub("", str(raw_subject)).strip() if raw_subject is not None else "",
        text=text,
        html=html,
        attachments=tuple(attachments),
        headers=tuple(headers),
    )
