"""The core is stdlib only: it imports and works with anyio unavailable."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys

    sys.modules["anyio"] = None  # any "import anyio" now raises ImportError
    try:
        import anyio  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("anyio is still importable")

    import lettre.protocol
    from lettre.protocol import ClientConnection, Ehlo, NEED_DATA

    conn = ClientConnection()
    conn.receive_data(b"220 mx.example ESMTP\\r\\n")
    assert conn.next_event().code == 220
    assert conn.send(Ehlo("client.example")) == b"EHLO client.example\\r\\n"
    assert conn.next_event() is NEED_DATA
    loaded = sorted(
        name for name in sys.modules
        if name.split(".")[0] in {"anyio", "trio", "asyncio", "socket", "ssl", "selectors"}
        and sys.modules[name] is not None
    )
    print(",".join(loaded))
    """
)


def test_protocol_imports_without_anyio() -> None:
    # Not measured by coverage, which would load selectors and socket itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    # Nothing that does I/O was loaded on the way.
    assert result.stdout.strip() == ""
