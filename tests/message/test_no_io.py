"""The message layer must not need any I/O library."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import lettre

_USE_LAYER = """
from lettre.message import Message
data = (
    Message.builder().from_("a@example.org").to("b@example.org")
    .subject("no I/O").text("body").attach(b"x", "x.bin").build().as_bytes()
)
assert data.startswith(b"Date: ")
loaded = {name.split(".")[0] for name, module in sys.modules.items() if module is not None}
assert "anyio" not in loaded and "trio" not in loaded, sorted(loaded)
print("ok")
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_message_layer_modules_import_without_anyio() -> None:
    # The layer's own modules, with the package's __init__ (which also loads
    # the transports) left out of the picture.
    package_dir = str(Path(lettre.__file__).parent)
    code = (
        "import sys, types\n"
        'sys.modules["anyio"] = None\n'
        'package = types.ModuleType("lettre")\n'
        f"package.__path__ = [{package_dir!r}]\n"
        'sys.modules["lettre"] = package\n'
        "import lettre.address, lettre.envelope, lettre.message\n"
        "import lettre.message.stdlib\n" + _USE_LAYER
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_lettre_message_without_anyio() -> None:
    # What users do: ``import lettre.message`` runs ``lettre/__init__.py`` first,
    # so the package's top level must not load I/O modules eagerly either.
    code = 'import sys\nsys.modules["anyio"] = None\nimport lettre.address\nimport lettre.message\n'
    result = _run(code + _USE_LAYER)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
