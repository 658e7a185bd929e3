"""The top-level package: what it exports and what importing it costs."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

import lettre


def test_every_exported_name_resolves_and_is_documented() -> None:
    for name in lettre.__all__:
        value = getattr(lettre, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = lettre.NoSuchThing  # type: ignore[attr-defined]


def test_dir_lists_the_lazy_names() -> None:
    assert set(lettre._LAZY) <= set(dir(lettre))
    assert set(lettre._LAZY) <= set(lettre.__all__)


def test_import_lettre_stays_light() -> None:
    code = (
        "import sys, lettre\n"
        "heavy = [m for m in ('cryptography', 'botocore', 'boto3', 'aiobotocore', 'aiohttp',"
        " 'pytest', 'trio', 'dkim', 'aiosmtpd', 'anyio', 'ssl', 'socket') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    # Not measured by coverage, which would load socket itself.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert out.stdout.strip() == ""


def test_lazy_names_load_their_module() -> None:
    import importlib

    for name, module_name in lettre._LAZY.items():
        assert getattr(lettre, name) is getattr(importlib.import_module(module_name), name)
