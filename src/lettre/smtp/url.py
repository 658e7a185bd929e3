"""``smtp://`` and ``smtps://`` URLs -> :class:`~lettre.smtp.settings.SmtpSettings`.

Form: ``smtp[s]://[user[:password]@]host[:port][?name=value&...]``.

- ``smtp://`` uses STARTTLS, required, unless ``tls=`` says otherwise;
  ``smtps://`` uses implicit TLS.
- The user name and password are percent-decoded (write ``@`` as ``%40``).
- The port defaults to the TLS mode's port (465, 587 or 25).
- Query parameters, each named after the :class:`SmtpSettings` field it sets
  (the fields' ``url`` metadata defines them): ``tls`` (none, opportunistic,
  starttls, implicit), ``timeout``, ``connect_timeout``, ``data_timeout``,
  ``deadline`` (seconds), ``hello_name``, ``auth_mechanisms`` or ``auth``
  (comma-separated mechanisms), ``allow_insecure_auth`` and
  ``require_all_recipients`` (true/false), ``local_address``, ``proxy`` (a
  proxy URL, percent-encoded as a query value:
  ``?proxy=socks5%3A%2F%2Fuser%3Asecret%40proxy.example%3A1080``; see
  :mod:`lettre.smtp.proxy`).

``lmtp://host[:port]`` is an LMTP server (port 24, no TLS unless ``tls=``
says otherwise), and ``lmtp:///path/to/socket`` one on a Unix socket.

Unknown or repeated parameters are errors, so a typo never silently weakens a
setting.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lettre.smtp.auth import AuthMechanism, Credentials
from lettre.smtp.settings import LmtpSettings, SmtpSettings
from lettre.smtp.tls import TlsMode

__all__ = ["parse_smtp_url", "settings_from_url"]

# Query parameter -> (SmtpSettings field, how its value is parsed), from the
# settings' own field definitions.
_PARAMS: dict[str, tuple[str, str]] = {
    alias: (f.name, f.metadata["url"])
    for f in fields(SmtpSettings)
    if "url" in f.metadata
    for alias in (f.name, *f.metadata.get("url_aliases", ()))
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_smtp_url(url: str) -> dict[str, Any]:
    """Parse an SMTP URL into keyword arguments for :class:`SmtpSettings`.

    Args:
        url: ``smtp://...`` or ``smtps://...``.

    Returns:
        The settings the URL names, as keyword arguments (``host``, ``port``,
        ``tls``, ``credentials`` and whatever the query sets; for ``lmtp://``
        also ``lmtp=True``, and ``unix_socket``: arguments of
        :class:`~lettre.smtp.settings.LmtpSettings`).

    Raises:
        ValueError: on another scheme, a missing host, a bad port, an unknown,
            repeated or invalid query parameter. The message never contains the
            password.
    """
    if not isinstance(url, str):
        raise TypeError("an SMTP URL must be a str")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        # urllib's message may quote part of the password: never echo it.
        raise ValueError(
            "invalid SMTP URL: bad host or port (percent-encode '/', '?', '#' and '@' "
            "in the user name and password)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps", "lmtp"):
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}: expected smtp, smtps or lmtp")
    host = parts.hostname
    unix_socket = None
    if scheme == "lmtp" and not host and parts.path not in ("", "/"):
        host, unix_socket = "localhost", unquote(parts.path)  # lmtp:///path/to/socket
    if not host:
        raise ValueError("the SMTP URL has no host")
    if parts.path not in ("", "/") and unix_socket is None:
        raise ValueError("an SMTP URL has no path: use smtp://host:port?name=value")
    if parts.fragment:
        raise ValueError("an SMTP URL has no fragment")

    kwargs: dict[str, Any] = {"host": host, "port": port}
    tls = TlsMode.IMPLICIT if scheme == "smtps" else TlsMode.STARTTLS
    if scheme == "lmtp":
        kwargs["lmtp"] = True  # settings_from_url makes LmtpSettings
        if unix_socket is not None:
            kwargs["unix_socket"] = unix_socket
        tls = TlsMode.NONE
    if parts.username is not None:
        username = unquote(parts.username)
        password = unquote(parts.password) if parts.password is not None else None
        if not username:
            raise ValueError("the SMTP URL has an empty user name")
        kwargs["credentials"] = Credentials(username, password)

    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name not in _PARAMS:
            known = ", ".join(sorted(_PARAMS))
            raise ValueError(f"unknown SMTP URL parameter {name!r} (known: {known})")
        setting, kind = _PARAMS[name]
        if setting in seen:
            raise ValueError(f"the SMTP URL repeats the parameter {name!r}")
        seen.add(setting)
        if kind == "tls":
            mode = TlsMode.parse(value)
            if scheme == "smtps" and mode is not TlsMode.IMPLICIT:
                raise ValueError("smtps:// means implicit TLS; use smtp:// for tls=" + value)
            tls = mode
        elif kind == "seconds":
            kwargs[setting] = _parse_seconds(name, value)
        elif kind == "bool":
            kwargs[setting] = _parse_bool(name, value)
        elif kind == "str":
            if not value:
                raise ValueError(f"the SMTP URL parameter {name!r} is empty")
            kwargs[setting] = value
        else:
            assert kind == "mechanisms", kind
            mechanisms = [AuthMechanism.parse(m) for m in value.split(",") if m.strip()]
            if not mechanisms:
                raise ValueError(f"the SMTP URL parameter {name!r} names no mechanism")
            kwargs[setting] = tuple(mechanisms)
    kwargs["tls"] = tls
    return kwargs


def settings_from_url(url: str, **overrides: Any) -> SmtpSettings:
    """Build :class:`SmtpSettings` from an SMTP URL, with keyword overrides.

    Args:
        url: ``smtp://...`` or ``smtps://...`` (see the module documentation).
        **overrides: any :class:`SmtpSettings` field, replacing what the URL
            says (for example ``tls_parameters=`` or ``token_provider=``).

    Raises:
        ValueError: when the URL or a resulting setting is invalid.
    """
    kwargs = parse_smtp_url(url)
    kwargs.update(overrides)
    if kwargs.pop("lmtp", False):
        return LmtpSettings(**kwargs)
    return SmtpSettings(**kwargs)


def _parse_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"the SMTP URL parameter {name!r} must be a number of seconds") from None
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"the SMTP URL parameter {name!r} must be a positive number of seconds")
    return seconds


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"the SMTP URL parameter {name!r} must be true or false")
