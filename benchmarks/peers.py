"""Throughput runners for the peers: aiosmtplib and smtplib.

Each runner sends pre-serialised 1 KiB messages (or builds stdlib messages)
to a server on 127.0.0.1 until ``budget`` says stop, and returns how many
were accepted and how many failed. ``concurrency`` is the number of
connections (and of workers: one connection each).
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
from email.message import EmailMessage

import aiosmtplib

from workload import SENDER, Budget, Counts, one_kib_body, one_kib_message, recipients

__all__ = [
    "aiosmtplib_new_connection",
    "aiosmtplib_reuse",
    "aiosmtplib_stdlib_messages",
    "smtplib_threads",
]


async def aiosmtplib_reuse(port: int, concurrency: int, budget: Budget) -> Counts:
    """One reused aiosmtplib connection per worker, pre-serialised bytes."""
    data = one_kib_message()
    counts = Counts()

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await client.connect()
        try:
            while budget.take():
                try:
                    await client.sendmail(SENDER, recipients(1), data)
                    counts.sent += 1
                except aiosmtplib.SMTPException:
                    counts.failed += 1
        finally:
            await client.quit()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


async def aiosmtplib_new_connection(port: int, concurrency: int, budget: Budget) -> Counts:
    """A new aiosmtplib connection for every message (``aiosmtplib.send``)."""
    data = one_kib_message()
    counts = Counts()

    async def worker() -> None:
        while budget.take():
            try:
                await aiosmtplib.send(
                    data,
                    sender=SENDER,
                    recipients=recipients(1),
                    hostname="127.0.0.1",
                    port=port,
                    start_tls=False,
                    timeout=30,
                )
                counts.sent += 1
            except aiosmtplib.SMTPException:
                counts.failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def stdlib_message(index: int) -> EmailMessage:
    """The stdlib equivalent of the end-to-end message: built from scratch."""
    message = EmailMessage()
    message["From"] = "Sender <sender@example.com>"
    message["To"] = "Recipient <rcpt0@example.com>"
    message["Subject"] = f"Benchmark message {index}"
    message.set_content(one_kib_body())
    return message


async def aiosmtplib_stdlib_messages(port: int, concurrency: int, budget: Budget) -> Counts:
    """Build a stdlib EmailMessage per send and ``send_message`` it (reused connections)."""
    counts = Counts()

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await client.connect()
        index = 0
        try:
            while budget.take():
                index += 1
                try:
                    await client.send_message(stdlib_message(index))
                    counts.sent += 1
                except aiosmtplib.SMTPException:
                    counts.failed += 1
        finally:
            await client.quit()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def smtplib_threads(port: int, concurrency: int, budget: Budget) -> Counts:
    """One smtplib connection per thread, pre-serialised bytes."""
    data = one_kib_message()
    counts = Counts()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                while True:
                    with lock:
                        if not budget.take():
                            return
                    try:
                        client.sendmail(SENDER, recipients(1), data)
                        ok = True
                    except smtplib.SMTPException:
                        ok = False
                    with lock:
                        if ok:
                            counts.sent += 1
                        else:
                            counts.failed += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=budget.seconds + 60)
    if errors:
        raise errors[0]
    return counts
