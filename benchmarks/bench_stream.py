"""Streamed attachments: the extra memory of sending a 200 MiB attachment, per transport.

Usage::

    python benchmarks/bench_stream.py             # 200 MiB attachment
    python benchmarks/bench_stream.py --quick     # 32 MiB

A message with one ``Attachment.from_path()`` of ``--size`` MiB (random
bytes, in a temporary directory) is sent once through each transport, each
case in a fresh process, with and without a DKIM signature:

- ``file``: ``FileTransport`` into a temporary directory;
- ``sendmail``: ``SendmailTransport`` running a real program that reads its
  standard input to the end (``cat`` to ``/dev/null``);
- ``smtp``: ``SmtpTransport`` to ``benchmarks/sink.py`` on 127.0.0.1 (its
  SIZE raised to 1 GiB for this run), once with CHUNKING (BDAT) and once
  without (DATA).

For each case it reports the process's peak resident memory during the
send minus its peak before (``resource.getrusage``, ``ru_maxrss``; the
message is built, everything imported and a small message sent first) and
the time the send took. The target: under 16 MiB of extra memory. A
transport class that does not read streamed content in chunks (``_streams``
unset) gets the whole message read into memory in a worker thread: its row
is reported and marked, not held to the target. The exit status is non-zero
when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MIB = 1024 * 1024
TARGET = 16 * MIB
HERE = Path(__file__).resolve().parent

# The child: build the message, send it once, print "<peak delta> <seconds>".
CHILD = r"""
import os, resource, sys, time
from pathlib import Path
import anyio

kind, attachment, workdir, port, sign = sys.argv[1:6]
from lettre.message import Attachment, Message
from lettre.transports.file import FileTransport
from lettre.transports.sendmail import SendmailTransport
from lettre.transports.smtp import SmtpTransport
from lettre.smtp import TlsMode

signers = None
if sign == "dkim":
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from lettre.dkim import DkimSigner
    signers = DkimSigner("example.com", "s1", ed25519.Ed25519PrivateKey.generate())

message = (
    Message.builder().from_("alice@example.com").to("bob@example.org")
    .subject("a large file").text("attached\n")
    .attach(Attachment.from_path(attachment)).build()
)

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

async def main():
    if kind == "file":
        transport = FileTransport(workdir, envelope=False, dkim=signers)
    elif kind == "sendmail":
        program = Path(workdir) / "sendmail"
        program.write_text("#!/bin/sh\nexec cat > /dev/null\n")
        program.chmod(0o755)
        transport = SendmailTransport(program, timeout=600, dkim=signers)
    else:
        transport = SmtpTransport(
            "127.0.0.1", int(port), tls=TlsMode.NONE, timeout=60, data_timeout=600, dkim=signers
        )
    async with transport:
        # Warm up: threads, the connection, the code paths, with a small message.
        small = Message.builder().from_("a@example.com").to("b@example.org").text("x\n").build()
        await transport.send(small)
        before = peak()
        start = time.perf_counter()
        await transport.send(message)
        seconds = time.perf_counter() - start
        print(peak() - before, seconds, int(getattr(type(transport), "_streams", False)))
        for name in os.listdir(workdir):
            if name.endswith(".eml"):
                os.unlink(os.path.join(workdir, name))

anyio.run(main)
"""


def make_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(block)


# benchmarks/sink.py with a SIZE of 1 GiB, with or without CHUNKING: its
# EHLO reply is a module constant.
SINK = (
    "import sys; sys.path.insert(0, {here!r}); import sink; "
    "sink._EHLO = sink._EHLO.replace(b'SIZE %d' % sink.MAX_MESSAGE, b'SIZE %d' % (1 << 30)); "
    "sink._EHLO = sink._EHLO if {chunking} else sink._EHLO.replace(b'250-CHUNKING\\r\\n', b''); "
    "sys.exit(sink.main(['--port', '0', '--max-seconds', '1800']))"
)


def start_sink(*, chunking: bool) -> tuple[subprocess.Popen[str], int]:
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK.format(here=str(HERE), chunking=chunking)],
        stdin=subprocess.PIPE,  # closed when done: the sink stops
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    line = sink.stdout.readline()
    return sink, int(line.split()[-1])


def run_case(kind: str, attachment: Path, port: int, sign: str) -> tuple[int, float, bool]:
    with tempfile.TemporaryDirectory() as workdir:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                *(kind, str(attachment), workdir, str(port), sign),
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{kind} ({sign}) failed:\n{result.stderr}")
    delta, seconds, streams = result.stdout.split()
    return int(delta), float(seconds), streams == "1"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 32 MiB attachment")
    parser.add_argument("--size", type=int, default=200, help="attachment size in MiB")
    args = parser.parse_args()
    size = (32 if args.quick else args.size) * MIB
    print(f"Python {sys.version.split()[0]}, attachment {size // MIB} MiB\n")
    print("| transport | signing | extra peak RSS | time | target |")
    print("|---|---|---:|---:|---|")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        attachment = Path(tmp) / "large.bin"
        make_file(attachment, size)
        sinks = [start_sink(chunking=True), start_sink(chunking=False)]
        cases = [("file", 0, "file"), ("sendmail", 0, "sendmail")]
        cases += [("smtp", sinks[0][1], "smtp, BDAT"), ("smtp", sinks[1][1], "smtp, DATA")]
        try:
            for kind, port, name in cases:
                for sign in ("none", "dkim"):
                    delta, seconds, streams = run_case(kind, attachment, port, sign)
                    ok = delta < TARGET
                    failed |= streams and not ok
                    if not streams:
                        target = "not held (the class reads the message whole)"
                    else:
                        target = "met" if ok else "MISSED"
                    print(
                        f"| {name} | {sign} | {delta / MIB:.1f} MiB | {seconds:.2f} s | {target} |"
                    )
        finally:
            for sink, _ in sinks:
                assert sink.stdin is not None
                sink.stdin.close()
                sink.wait(timeout=30)
    print("\nTargets missed." if failed else "\nAll targets met.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
