"""Message building and serialisation: lettre against the standard library.

Usage::

    python benchmarks/bench_message.py            # full run (about a minute)
    python benchmarks/bench_message.py --quick    # fewer repetitions

Each case builds a message from scratch and serialises it, in the same run,
with lettre (``Message.builder() ... .build().as_bytes()``) and with the
standard library (``EmailMessage`` + ``policy.SMTP``, ``as_bytes()``); both
get a Date and a Message-ID. Cases:

    (a) a plain-text message (the same addresses every time, as in a loop
        that builds one message many times, and a new recipient each time,
        as in a mailing);
    (b) text + HTML alternative with a non-ASCII subject and display names;
    (c) one attachment of 100 KiB and one of 10 MiB (throughput in MB/s).

The best of several rounds is reported. For the 10 MiB case the peak memory
allocated while building and serialising (tracemalloc) is reported too, as a
multiple of the attachment's size. Targets: lettre at least 10x the
stdlib's messages/s on (a) and (b), at least 3x its MB/s on (c), and at most
3x the attachment's size in extra memory. The exit status is non-zero when a
target is missed.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import time
import tracemalloc
from collections.abc import Callable
from email import policy
from email.headerregistry import Address as StdAddress
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from lettre.message import Message

SMALL = 100 * 1024
LARGE = 10 * 1024 * 1024

TEXT = "Hi Bob,\n\nthe report is ready; see you on Monday.\n\nAlice\n"
HTML = "<html><body><p>Hej J&ouml;rg,</p><p>vi ses p&aring; m&aring;ndag!</p></body></html>\n"
TEXT_UTF8 = "Hej Jörg,\n\nvi ses på måndag!\n\nÅsa\n"


def lettre_plain() -> bytes:
    return (
        Message.builder()
        .from_("Alice Example <alice@example.org>")
        .to("Bob Example <bob@example.com>")
        .subject("The weekly report")
        .text(TEXT)
        .build()
        .as_bytes()
    )


_counter = itertools.count()


def lettre_plain_distinct() -> bytes:
    n = next(_counter)
    return (
        Message.builder()
        .from_("Alice Example <alice@example.org>")
        .to(f"Reader {n} <reader{n}@example.com>")
        .subject("The weekly report")
        .text(TEXT)
        .build()
        .as_bytes()
    )


def stdlib_plain_distinct() -> bytes:
    n = next(_counter)
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Alice Example <alice@example.org>"
    msg["To"] = f"Reader {n} <reader{n}@example.com>"
    msg["Subject"] = "The weekly report"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(TEXT)
    return msg.as_bytes()


def stdlib_plain() -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Alice Example <alice@example.org>"
    msg["To"] = "Bob Example <bob@example.com>"
    msg["Subject"] = "The weekly report"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content(TEXT)
    return msg.as_bytes()


def lettre_alternative() -> bytes:
    return (
        Message.builder()
        .from_("Åsa Ekström <asa@example.se>")
        .to("Jörg Müller <joerg@example.de>")
        .subject("Grüße från Malmö: nästa möte")
        .text(TEXT_UTF8)
        .html(HTML)
        .build()
        .as_bytes()
    )


def stdlib_alternative() -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = StdAddress("Åsa Ekström", addr_spec="asa@example.se")
    msg["To"] = StdAddress("Jörg Müller", addr_spec="joerg@example.de")
    msg["Subject"] = "Grüße från Malmö: nästa möte"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain="example.se")
    msg.set_content(TEXT_UTF8)
    msg.add_alternative(HTML, subtype="html")
    return msg.as_bytes()


def lettre_attachment(data: bytes) -> Callable[[], bytes]:
    def run() -> bytes:
        return (
            Message.builder()
            .from_("alice@example.org")
            .to("bob@example.com")
            .subject("Attached")
            .text("See the attachment.")
            .attach(data, "data.bin")
            .build()
            .as_bytes()
        )

    return run


def stdlib_attachment(data: bytes) -> Callable[[], bytes]:
    def run() -> bytes:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = "alice@example.org"
        msg["To"] = "bob@example.com"
        msg["Subject"] = "Attached"
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="example.org")
        msg.set_content("See the attachment.")
        msg.add_attachment(
            data, maintype="application", subtype="octet-stream", filename="data.bin"
        )
        return msg.as_bytes()

    return run


def _calls_for(func: Callable[[], bytes], seconds: float) -> int:
    func()
    start = time.perf_counter()
    func()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(seconds / once))


def _round(func: Callable[[], bytes], calls: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(calls):
        func()
    return calls / (time.perf_counter() - start)


def compare(
    ours: Callable[[], bytes], theirs: Callable[[], bytes], seconds: float, rounds: int
) -> tuple[float, float]:
    """Calls per second of each: the best of ``rounds`` rounds, run alternately.

    Alternating the rounds exposes both sides to the same machine load.
    """
    our_calls = _calls_for(ours, seconds)
    their_calls = _calls_for(theirs, seconds)
    our_best = their_best = 0.0
    for _ in range(rounds):
        our_best = max(our_best, _round(ours, our_calls))
        their_best = max(their_best, _round(theirs, their_calls))
    return our_best, their_best


def peak_memory(func: Callable[[], bytes]) -> int:
    """Peak bytes allocated while ``func`` runs (its result included)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args()
    seconds, rounds = (0.3, 3) if args.quick else (1.0, 5)

    small = os.urandom(SMALL)
    large = os.urandom(LARGE)
    rows: list[tuple[str, str, float, float, float, float]] = []
    failures: list[str] = []

    for label, ours, theirs in (
        ("(a) plain text", lettre_plain, stdlib_plain),
        ("(a) plain text, new recipient each", lettre_plain_distinct, stdlib_plain_distinct),
        ("(b) text+html, non-ASCII", lettre_alternative, stdlib_alternative),
    ):
        lettre_rate, stdlib_rate = compare(ours, theirs, seconds, rounds)
        ratio = lettre_rate / stdlib_rate
        rows.append((label, "msg/s", lettre_rate, stdlib_rate, ratio, 10.0))
        if ratio < 10:
            failures.append(f"{label}: {ratio:.1f}x < 10x")

    for label, data in (("(c) attachment 100 KiB", small), ("(c) attachment 10 MiB", large)):
        ours_rate, theirs_rate = compare(
            lettre_attachment(data), stdlib_attachment(data), seconds, rounds
        )
        lettre_rate = ours_rate * len(data) / 1e6
        stdlib_rate = theirs_rate * len(data) / 1e6
        ratio = lettre_rate / stdlib_rate
        rows.append((label, "MB/s", lettre_rate, stdlib_rate, ratio, 3.0))
        if ratio < 3:
            failures.append(f"{label}: {ratio:.1f}x < 3x")

    lettre_peak = peak_memory(lettre_attachment(large)) / LARGE
    stdlib_peak = peak_memory(stdlib_attachment(large)) / LARGE
    if lettre_peak > 3:
        failures.append(f"10 MiB peak memory {lettre_peak:.2f}x > 3x")

    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print()
    print("| case | unit | lettre | stdlib | ratio | target |")
    print("|---|---|---:|---:|---:|---:|")
    for label, unit, ours_value, theirs_value, ratio, target in rows:
        print(
            f"| {label} | {unit} | {ours_value:,.0f} | {theirs_value:,.0f} | "
            f"{ratio:.1f}x | >= {target:.0f}x |"
        )
    print(
        f"| (c) 10 MiB peak memory | x attachment | {lettre_peak:.2f} | {stdlib_peak:.2f} | "
        f"{stdlib_peak / lettre_peak:.1f}x less | <= 3 |"
    )
    print()
    if failures:
        print("MISSED: " + "; ".join(failures))
        return 1
    print("All targets met.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
