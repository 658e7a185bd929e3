"""TLS settings for SMTP: the TLS mode and the parameters of the ``ssl.SSLContext``.

The defaults are the secure ones: the system trust store, certificate and host
name verification, TLS 1.2 at least. Turning verification off takes an argument
whose name starts with ``dangerously_``.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import ssl
from dataclasses import dataclass, field

from lettre.errors import TlsError

__all__ = ["TlsMode", "TlsParameters"]


class TlsMode(enum.Enum):
    """How an SMTP connection uses TLS.

    Attributes:
        NONE: plain text only; STARTTLS is never attempted.
        OPPORTUNISTIC: upgrade with STARTTLS when the server offers it, carry on
            in plain text when it does not (or refuses the command). A failed
            TLS handshake is still an error: the certificate is verified as
            usual.
        STARTTLS: STARTTLS is required: the connection fails closed, before any
            credentials or envelope is sent, when the server does not offer it
            or refuses it. The usual mode for port 587.
        IMPLICIT: TLS from the first byte ("SMTPS", port 465, RFC 8314).
    """

    NONE = "none"
    OPPORTUNISTIC = "opportunistic"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"

    @property
    def default_port(self) -> int:
        """The port this mode is normally used on: 465, 587 or 25."""
        if self is TlsMode.IMPLICIT:
            return 465
        if self is TlsMode.STARTTLS:
            return 587
        return 25

    @classmethod
    def parse(cls, value: TlsMode | str) -> TlsMode:
        """Return the mode named by ``value`` (case-insensitive), or ``value`` itself.

        Besides the member values, ``"required"`` means STARTTLS and
        ``"wrapper"``/``"smtps"``/``"tls"`` mean IMPLICIT.

        Args:
            value: a TlsMode, or a name such as ``"starttls"``.

        Raises:
            ValueError: when ``value`` names no mode.
            TypeError: when ``value`` is neither a TlsMode nor a str.
        """
        if isinstance(value, TlsMode):
            return value
        if not isinstance(value, str):
            raise TypeError(f"a TLS mode must be a TlsMode or a str, not {type(value).__name__}")
        name = value.strip().lower()
        aliases = {"required": "starttls", "wrapper": "implicit", "smtps": "implicit"}
        aliases["tls"] = "implicit"
        name = aliases.get(name, name)
        for mode in cls:
            if mode.value == name:
                return mode
        choices = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown TLS mode {value!r}; expected one of {choices}")


_PathLike = str | os.PathLike[str]


def _check_server_name(name: object) -> None:
    """Refuse a ``server_name`` that TLS cannot send or check, before any connection."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("server_name must be a non-empty host name")
    try:
        ipaddress.ip_address(name.strip("[]"))
        return
    except ValueError:
        pass
    try:
        name.encode("idna")  # what the ssl module does with it, at the handshake
    except UnicodeError as exc:
        raise ValueError(
            f"server_name {name!r} is not a host name TLS can check ({exc}): give the "
            "name on the server's certificate, for example 'mail.example.com'"
        ) from None


@dataclass(frozen=True, slots=True)
class TlsParameters:
    """What goes into the ``ssl.SSLContext`` of an SMTP connection.

    Args:
        ca_file: a PEM file of extra certificate authorities to trust.
        ca_data: extra certificate authorities as PEM text (``str``) or DER
            bytes.
        use_system_trust: trust the system's certificate authorities too
            (default True). With False only ``ca_file``/``ca_data`` are trusted.
        client_cert: a PEM file with the client certificate (mutual TLS); it may
            hold the private key as well.
        client_key: a PEM file with the client certificate's private key, when
            it is not in ``client_cert``.
        client_key_password: the password of an encrypted private key. Never
            shown in the repr.
        min_version: the lowest TLS version accepted (default TLS 1.2).
        max_version: the highest TLS version offered (default: the highest the
            ssl module supports).
        server_name: the name sent in SNI and checked against the certificate,
            when it differs from the host connected to (for example when
            connecting to an IP address).
        dangerously_skip_verification: accept any certificate for any name.
            The connection is then encrypted but not authenticated: anyone on
            the path can read it. Only for tests.
        dangerously_skip_hostname_check: verify the certificate chain but accept
            a certificate issued for another name.

    Raises:
        TypeError: when an argument has the wrong type.
        ValueError: when ``client_key`` is given without ``client_cert``, or the
            versions are inconsistent.
    """

    ca_file: _PathLike | None = None
    ca_data: str | bytes | None = None
    use_system_trust: bool = True
    client_cert: _PathLike | None = None
    client_key: _PathLike | None = None
    client_key_password: str | None = field(default=None, repr=False)
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    server_name: str | None = None
    dangerously_skip_verification: bool = False
    dangerously_skip_hostname_check: bool = False

    def __post_init__(self) -> None:
        if self.ca_data is not None and not isinstance(self.ca_data, (str, bytes)):
            raise TypeError("ca_data must be PEM text (str) or DER bytes")
        if not isinstance(self.min_version, ssl.TLSVersion):
            raise TypeError("min_version must be an ssl.TLSVersion")
        if self.max_version is not None:
            if not isinstance(self.max_version, ssl.TLSVersion):
                raise TypeError("max_version must be an ssl.TLSVersion")
            if _version_rank(self.max_version) < _version_rank(self.min_version):
                raise ValueError("max_version is lower than min_version")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        if self.client_key_password is not None and self.client_cert is None:
            raise ValueError("client_key_password needs client_cert")
        if self.server_name is not None:
            _check_server_name(self.server_name)
        if (
            not self.use_system_trust
            and self.ca_file is None
            and self.ca_data is None
            and not self.dangerously_skip_verification
        ):
            raise ValueError(
                "use_system_trust=False needs ca_file or ca_data: nothing would be trusted"
            )

    def create_context(self) -> ssl.SSLContext:
        """Build the client-side ``ssl.SSLContext`` these parameters describe.

        Returns:
            A new context for connecting to servers.

        Raises:
            TlsError: when a CA or client certificate cannot be loaded (the ssl
                or OS error is chained).
        """
        # What is being loaded, for the error: the ssl module does not always say.
        loading = "the system's trusted certificates"
        try:
            if self.use_system_trust:
                context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            loading = "the TLS versions"
            context.minimum_version = self.min_version
            if self.max_version is not None:
                context.maximum_version = self.max_version
            if self.ca_file is not None:
                loading = f"ca_file {os.fspath(self.ca_file)!r}"
                context.load_verify_locations(cafile=os.fspath(self.ca_file))
            if self.ca_data is not None:
                loading = "ca_data"
                context.load_verify_locations(cadata=self.ca_data)
            if self.client_cert is not None:
                loading = f"client_cert {os.fspath(self.client_cert)!r}"
                if self.client_key is not None:
                    loading += f" with client_key {os.fspath(self.client_key)!r}"
                context.load_cert_chain(
                    os.fspath(self.client_cert),
                    os.fspath(self.client_key) if self.client_key is not None else None,
                    self.client_key_password,
                )
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise TlsError(
                f"cannot build the TLS context: loading {loading}: {_describe(exc)}"
            ) from exc
        if self.dangerously_skip_verification:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.dangerously_skip_hostname_check:
            context.check_hostname = False
        return context


def _version_rank(version: ssl.TLSVersion) -> int:
    # MINIMUM_SUPPORTED and MAXIMUM_SUPPORTED are negative sentinels.
    if version is ssl.TLSVersion.MINIMUM_SUPPORTED:
        return -(10**6)
    if version is ssl.TLSVersion.MAXIMUM_SUPPORTED:
        return 10**6
    return int(version.value)


def _describe(exc: BaseException) -> str:
    """A short description of an exception that never includes a key password."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__
