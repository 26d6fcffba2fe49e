"""Every frame a test client receives is checked against its declaration.

``Client`` (tests/conftest.py, real sockets) and ``NodeClient`` (tests/node.py,
in-process) hand each decoded frame to ``check``; the autouse fixture
``wire_frames_declared`` (tests/conftest.py) fails the test that received a
frame ``chatserver.protocol.wire.problems`` finds wrong, after it ran.
"""

from __future__ import annotations

from typing import Any

from chatserver.protocol import wire

MAX_KEPT = 20  # problems kept per test: the first ones tell

PROBLEMS: list[str] = []


def check(frame: Any) -> None:
    """Note what is wrong with a received ``frame`` (nothing when it matches)."""
    found = wire.problems(frame)
    if found and len(PROBLEMS) < MAX_KEPT:
        shown = (
            {k: v for k, v in frame.items() if k != "events"} if isinstance(frame, dict) else frame
        )
        PROBLEMS.append(f"{'; '.join(found)} in {str(shown)[:600]}")


def take() -> list[str]:
    """The problems noted since the last ``take`` (and forget them)."""
    found = PROBLEMS[:]
    PROBLEMS.clear()
    return found
