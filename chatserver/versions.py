"""The releases of uvicorn and websockets that chatserver is tested with.

``chatserver/web/uvicorn_ws.py`` subclasses uvicorn's websockets-sansio protocol
and uses websockets' sans-I/O internals, so a release outside the tested
range can break serving itself. ``pyproject.toml`` bounds both
(``TESTED`` must say the same: ``tests/server/test_install.py`` checks); this is
the start-up check for an environment that was not installed from the lock.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from importlib import metadata

# package -> (lowest tested, first release not tested), as in pyproject.toml.
TESTED: dict[str, tuple[str, str]] = {
    "uvicorn": ("0.54", "0.56"),
    "websockets": ("14", "18"),
}

# Set to 1 to start anyway (a warning instead of the refusal).
OVERRIDE = "CHATSERVER_ALLOW_UNTESTED"


def _key(version: str) -> tuple[int, ...]:
    """``"0.55.1"`` -> ``(0, 55, 1)``; a pre-release suffix is dropped."""
    parts: list[int] = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() < len(part):
            break
    return tuple(parts)


def untested(version_of: Callable[[str], str] = metadata.version) -> list[str]:
    """One sentence per installed package outside its tested range (empty: all fine)."""
    problems = []
    for name, (low, high) in TESTED.items():
        try:
            installed = version_of(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed (chatserver needs >={low},<{high})")
            continue
        if not _key(low) <= _key(installed) < _key(high):
            problems.append(
                f"{name} {installed} is installed, but chatserver is tested with "
                f"{name}>={low},<{high}"
            )
    return problems


def check(version_of: Callable[[str], str] = metadata.version) -> str | None:
    """The start-up check: an error message, or None to go on.

    With ``CHATSERVER_ALLOW_UNTESTED=1`` nothing is refused (``serve`` logs
    the problems as a warning instead).
    """
    problems = untested(version_of)
    if not problems or os.environ.get(OVERRIDE) == "1":
        return None
    return (
        "; ".join(problems)
        + ". Install from the lock (scripts/setup, or `uv sync --locked`), or set "
        + f"{OVERRIDE}=1 to start anyway."
    )
