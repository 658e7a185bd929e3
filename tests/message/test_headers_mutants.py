"""Header rendering pinned down byte for byte where the other tests only checked the meaning.

Each test here fixes a behaviour of ``lettre.message.headers`` that a small change to the code
(a bound moved by one, a character set widened, an argument dropped) would alter without any
other test noticing.
"""

from __future__ import annotations

import base64
import binascii
from email.header import decode_header, make_header

import pytest

from lettre.address import Address, Mailbox
from lettre.errors import MessageError
from lettre.message.headers import (
    encode_words,
    finish_header,
    render_address_list,
    render_msg_ids,
    render_params,
    render_structured,
    render_unstructured,
)


def _decoded(header: bytes) -> str:
    """The value of one rendered header, unfolded and with its encoded words decoded."""
    value = header.decode("utf-8").split(":", 1)[1].removesuffix("\r\n").replace("\r\n", "")
    return str(make_header(decode_header(value)))


def test_a_word_of_exactly_900_characters_stays_raw() -> None:
    word = "a" * 900
    assert render_unstructured("Subject", word) == f"Subject:\r\n {word}\r\n".encode()
    assert b"=?" in render_unstructured("Subject", word + "a")


def test_a_long_ascii_value_folds_between_raw_words() -> None:
    value = " ".join(["word"] * 20)
    assert render_unstructured("Subject", value) == (
        b"Subject: " + b" ".join([b"word"] * 14) + b"\r\n " + b" ".join([b"word"] * 6) + b"\r\n"
    )


def test_only_spaces_and_tabs_are_whitespace_between_words() -> None:
    # An ideographic space or an X next to the words is part of them, never dropped.
    assert render_unstructured("Subject", "\u3000abc") == b"Subject: =?utf-8?q?=E3=80=80abc?=\r\n"
    assert render_unstructured("Subject", "X \u00e9") == b"Subject: X =?utf-8?q?=C3=A9?=\r\n"
    assert render_unstructured("Subject", "\u00e9 X") == b"Subject: =?utf-8?q?=C3=A9?= X\r\n"


def test_a_value_of_only_spaces_fits_its_first_word_after_the_name() -> None:
    rendered = render_unstructured("X-Twenty-Character-N", " " * 50)
    assert rendered == (
        b"X-Twenty-Character-N: =?utf-8?q?" + b"_" * 44 + b"?=\r\n =?utf-8?q?______?=\r\n"
    )
    assert max(len(line) for line in rendered.split(b"\r\n")) == 78


def test_trailing_whitespace_is_kept_inside_the_last_encoded_word() -> None:
    rendered = render_unstructured("Subject", "\u00e9 abc ")
    assert rendered == b"Subject: =?utf-8?q?=C3=A9_abc_?=\r\n"
    assert _decoded(rendered) == "\u00e9 abc "


def test_an_encoded_run_after_a_raw_word_may_use_a_whole_encoded_word() -> None:
    # Only the first piece shares its line with the header name.
    name = "X-A-Rather-Long-Header-Name-For-Tests"
    assert render_unstructured(name, "abc " + "x" * 40 + "\u00e9") == (
        f"{name}: abc\r\n =?utf-8?q?{'x' * 40}=C3=A9?=\r\n".encode()
    )


def test_quoted_display_names_escape_backslashes_and_quotes() -> None:
    mailbox = Mailbox(Address("x@example.com"), 'a\\b "c"')
    assert render_address_list("From", [mailbox]) == b'From: "a\\\\b \\"c\\"" <x@example.com>\r\n'


def test_a_single_bare_address_is_rendered_as_a_mailbox() -> None:
    assert render_address_list("To", [Address("x@example.com")]) == b"To: x@example.com\r\n"


def test_q_is_chosen_up_to_one_and_a_half_times_the_length_of_b() -> None:
    # "==": Q is 6 characters, B is 4: exactly the limit, still Q.
    assert encode_words("==") == ["=?utf-8?q?=3D=3D?="]
    # "====ab": Q is 14 characters, B is 8: B.
    assert encode_words("====ab") == ["=?utf-8?b?PT09PWFi?="]
    assert encode_words("\u00e9\u00e9\u00e9\u00e9") == ["=?utf-8?b?w6nDqcOpw6k=?="]


def test_the_first_word_budget_is_at_least_12_characters() -> None:
    assert encode_words("abcdefghijkl", 20) == ["=?utf-8?q?abcdefghijkl?="]
    assert encode_words("abcdefghijklm", 20) == ["=?utf-8?q?abcdefghijkl?=", "=?utf-8?q?m?="]


def test_q_words_are_filled_to_exactly_75_characters() -> None:
    assert encode_words("a" * 63) == [f"=?utf-8?q?{'a' * 63}?="]
    assert encode_words("a" * 64) == [f"=?utf-8?q?{'a' * 63}?=", "=?utf-8?q?a?="]
    assert encode_words("a" * 200) == [
        f"=?utf-8?q?{'a' * 63}?=",
        f"=?utf-8?q?{'a' * 63}?=",
        f"=?utf-8?q?{'a' * 63}?=",
        "=?utf-8?q?aaaaaaaaaaa?=",
    ]


_MIXED = "\u00e9\u20ac\u0915\U0001f600"  # two, three, three (lead 0xE0) and four octets


@pytest.mark.parametrize("prefix", range(16))
@pytest.mark.parametrize("first_max", [75, 40])
def test_q_words_never_split_a_character_and_are_filled_greedily(
    prefix: int, first_max: int
) -> None:
    text = "a" * prefix + ("abcdefghij" * 4 + _MIXED) * 4
    words = encode_words(text, first_max)
    payloads = []
    for word in words:
        assert word.startswith("=?utf-8?q?")
        assert word.endswith("?=")
        payloads.append(word[10:-2])
    decoded = [_q_decode(p) for p in payloads]  # each word holds whole characters
    assert "".join(decoded) == text
    budget = min(first_max, 75) - 12
    for payload, following in zip(payloads, decoded[1:], strict=False):
        assert len(payload) <= budget
        # The next character did not fit: a word is only ended when full.
        assert len(payload) + len(_q_length_of(following[0])) > budget
        budget = 63
    assert len(payloads[-1]) <= budget


def _q_decode(payload: str) -> str:
    data = bytearray()
    i = 0
    while i < len(payload):
        if payload[i] == "=":
            data.append(int(payload[i + 1 : i + 3], 16))
            i += 3
        else:
            data.append(0x20 if payload[i] == "_" else ord(payload[i]))
            i += 1
    return bytes(data).decode("utf-8")  # strict: a split character fails here


def _q_length_of(ch: str) -> str:
    return "".join(f"={b:02X}" if b >= 0x80 else chr(b) for b in ch.encode("utf-8"))


def test_errors_name_the_header_from_before_its_first_colon() -> None:
    with pytest.raises(MessageError, match=r"^refusing to write header 'X-Test': unsafe character"):
        finish_header("X-Test: a:b\x01\r\n")
    with pytest.raises(MessageError, match=r"^a line of header 'X-Test' exceeds 998 octets$"):
        finish_header("X-Test: a:" + "b" * 1000 + "\r\n")


def test_a_header_line_of_exactly_998_octets_is_written() -> None:
    text = "X: " + "a" * 995 + "\r\n"
    assert finish_header(text) == text.encode()


def test_errors_in_values_name_the_header_or_the_parameter() -> None:
    with pytest.raises(MessageError, match=r"^the Subject header contains the control character"):
        render_unstructured("Subject", "a\nb")
    with pytest.raises(MessageError, match=r"^the name parameter contains the control character"):
        render_params("Content-Type", "text/plain", [("name", "a\x01")])


def test_a_fold_happens_after_a_two_character_line_too() -> None:
    assert render_structured("X-Test", "a" * 100 + " x " + "b" * 77) == (
        f"X-Test:\r\n {'a' * 100}\r\n x\r\n {'b' * 77}\r\n".encode()
    )


def test_a_continuation_line_is_filled_to_exactly_78_columns() -> None:
    assert render_structured("X-Test", "a" * 70 + " " + "b" * 75 + " c") == (
        f"X-Test: {'a' * 70}\r\n {'b' * 75} c\r\n".encode()
    )


def test_an_unstructured_value_up_to_78_columns_stays_on_one_line() -> None:
    assert render_unstructured("Subject", " ".join(["abcd"] * 14)) == (
        b"Subject: " + b" ".join([b"abcd"] * 14) + b"\r\n"
    )
    assert render_unstructured("Subject", " ".join(["abcd"] * 13) + " abcdef") == (
        b"Subject: " + b" ".join([b"abcd"] * 13) + b"\r\n abcdef\r\n"
    )


def test_the_first_encoded_word_fills_the_first_line_to_78_columns() -> None:
    rendered = render_unstructured("Subject", "\u00e9" + "a" * 51)
    assert rendered == f"Subject: =?utf-8?q?=C3=A9{'a' * 51}?=\r\n".encode()
    assert len(rendered) == 80


def test_an_ascii_display_name_that_looks_encoded_is_encoded() -> None:
    mailbox = Mailbox(Address("x@example.com"), "=?x?=")
    assert render_address_list("To", [mailbox]) == b"To: =?utf-8?b?PT94Pz0=?= <x@example.com>\r\n"


def test_a_quoted_display_name_up_to_60_characters_is_one_quoted_string() -> None:
    name = "Dr. " + "x" * 54
    assert render_address_list("To", [Mailbox(Address("x@example.com"), name)]) == (
        f'To: "{name}"\r\n <x@example.com>\r\n'.encode()
    )
    longer = "Dr. " + "x" * 55
    assert render_address_list("To", [Mailbox(Address("x@example.com"), longer)]) == (
        f'To: "Dr." {"x" * 55}\r\n <x@example.com>\r\n'.encode()
    )


def test_a_display_name_word_of_899_characters_stays_raw() -> None:
    word = "x" * 899
    rendered = render_address_list("To", [Mailbox(Address("x@example.com"), "Dr. " + word)])
    assert rendered == f'To: "Dr."\r\n {word}\r\n <x@example.com>\r\n'.encode()
    longer = render_address_list("To", [Mailbox(Address("x@example.com"), "Dr. " + word + "x")])
    assert longer.startswith(b"To: =?utf-8?")


def test_message_ids_fold_past_78_columns_and_are_all_written() -> None:
    assert render_msg_ids("References", ["<a@b>", "<c@d>"]) == b"References: <a@b> <c@d>\r\n"
    long_id = "<" + "a" * 64 + "@b.example>"  # 77 characters: 90 columns with the name
    assert render_msg_ids("Message-ID", [long_id]) == f"Message-ID:\r\n {long_id}\r\n".encode()
    just_over = "<" + "a" * 55 + "@b.example>"  # 67: one column too many
    assert render_msg_ids("Message-ID", [just_over]) == f"Message-ID:\r\n {just_over}\r\n".encode()
    fits = "<" + "a" * 54 + "@b.example>"
    assert render_msg_ids("Message-ID", [fits]) == f"Message-ID: {fits}\r\n".encode()


def test_a_parameter_is_written_bare_up_to_76_columns() -> None:
    assert render_params("Content-Type", "text/plain", [("name", "a" * 68)]) == (
        f"Content-Type: text/plain;\r\n name={'a' * 68}\r\n".encode()
    )
    assert render_params("Content-Type", "text/plain", [("name", "a" * 69)]) == (
        b"Content-Type: text/plain;\r\n name*0*=utf-8''"
        + b"a" * 57
        + b";\r\n name*1*="
        + b"a" * 12
        + b"\r\n"
    )


def test_rfc2231_continuations_fill_their_lines_and_only_the_last_has_no_semicolon() -> None:
    rendered = render_params("Content-Type", "text/plain", [("name", "\u00e9" + "a" * 150)])
    assert rendered == (
        b"Content-Type: text/plain;\r\n name*0*=utf-8''%C3%A9"
        + b"a" * 51
        + b";\r\n name*1*="
        + b"a" * 64
        + b";\r\n name*2*="
        + b"a" * 35
        + b"\r\n"
    )
    assert max(len(line) for line in rendered.split(b"\r\n")) == 74


def test_b_words_never_split_a_character() -> None:
    # U+0100 is C4 80: a cut after 45 octets would fall on a continuation octet 0x80.
    words = encode_words("\u0100" * 40)
    assert [w[:10] for w in words] == ["=?utf-8?b?"] * len(words)
    decoded = [binascii.a2b_base64(w[10:-2]).decode("utf-8") for w in words]
    assert "".join(decoded) == "\u0100" * 40
    assert words == [
        "=?utf-8?b?" + base64.b64encode(("\u0100" * 22).encode()).decode() + "?=",
        "=?utf-8?b?" + base64.b64encode(("\u0100" * 18).encode()).decode() + "?=",
    ]
