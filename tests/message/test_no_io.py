"""The message layer must not need any I/O library."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_message_layer_imports_without_anyio() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["anyio"] = None  # any import of anyio now fails
        import lettre.address
        import lettre.envelope
        import lettre.message
        from lettre.message import Message
        data = (
            Message.builder().from_("a@example.org").to("b@example.org")
            .subject("no I/O").text("body").attach(b"x", "x.bin").build().as_bytes()
        )
        assert data.startswith(b"Date: ")
        assert "anyio" not in {name.split(".")[0] for name, mod in sys.modules.items() if mod}
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
