"""SASLprep (RFC 4013): the stringprep profile for user names and passwords.

SCRAM prepares the user name and the password with it before using them, so
that a password typed in another Unicode form (a full-width digit, a
ligature, a non-breaking space) gives the same key on both sides. Built on
the standard library's :mod:`stringprep` tables and Unicode 3.2
normalisation, which is what RFC 3454 specifies.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable

from lettre.errors import LocalProtocolError

__all__ = ["saslprep"]

# RFC 4013 section 2.3: the prohibited output.
_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12,  # non-ASCII space characters
    stringprep.in_table_c21_c22,  # ASCII and non-ASCII control characters
    stringprep.in_table_c3,  # private use
    stringprep.in_table_c4,  # non-character code points
    stringprep.in_table_c5,  # surrogate codes
    stringprep.in_table_c6,  # inappropriate for plain text
    stringprep.in_table_c7,  # inappropriate for canonical representation
    stringprep.in_table_c8,  # change display properties or deprecated
    stringprep.in_table_c9,  # tagging characters
)


def saslprep(text: str, *, what: str = "the value", allow_unassigned: bool = True) -> str:
    """Prepare ``text`` with the SASLprep profile (RFC 4013).

    Non-ASCII spaces become U+0020, characters "commonly mapped to nothing"
    (such as the soft hyphen) are removed, the result is normalised with
    NFKC, then prohibited characters and bad bidirectional text are refused.

    Args:
        text: the user name or password.
        what: how to name the value in an error (never the value itself).
        allow_unassigned: allow code points unassigned in Unicode 3.2, as a
            "query" string may (RFC 5802 prepares SCRAM's values as queries).

    Returns:
        The prepared string.

    Raises:
        LocalProtocolError: when ``text`` is not a str, or contains a
            character the profile prohibits; the message names ``what`` and
            never shows the value.
    """
    if not isinstance(text, str):
        raise LocalProtocolError(f"{what} must be a str, not {type(text).__name__}")
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in text
        if not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for char in prepared:
        if any(prohibited(char) for prohibited in _PROHIBITED):
            raise LocalProtocolError(
                f"{what} contains a character that SASLprep (RFC 4013) prohibits "
                "(a control, private-use or non-character code point)"
            )
        if not allow_unassigned and stringprep.in_table_a1(char):
            raise LocalProtocolError(f"{what} contains an unassigned Unicode code point")
    # RFC 3454 section 6: right-to-left text must be only right-to-left
    # and start and end with a right-to-left character.
    right_to_left = any(stringprep.in_table_d1(char) for char in prepared)
    if right_to_left and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        raise LocalProtocolError(
            f"{what} mixes right-to-left and left-to-right text in a way that "
            "SASLprep (RFC 4013) prohibits"
        )
    return prepared
