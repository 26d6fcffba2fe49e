"""The threads chatserver starts, as the operating system sees them.

Each of them calls ``settle`` first thing.  ``settle`` names the thread for
the operating system and, when asked, sets its scheduling class.

* **The name.** Linux keeps 15 bytes of it: the Python name without the
  ``chatserver-`` prefix.  Then ``top -H``, ``ps -L``, ``perf`` and
  ``/proc/<pid>/task/*/comm`` tell the threads apart: the event loop stays
  ``python``; the SQLite writer is ``sqlite``, with its reader and
  checkpointer beside it (``sqlite-read``, ``sqlite-ckpt``); then come the
  archive's lanes (``archive``, ``archive-read``), the blob threads
  (``blobs_0``, ...) and the password hashers (``password_0``, ...).
  `docs/operations.md` ("Threads") says what each one does.
* **The scheduling class.** ``BATCH`` (``SCHED_BATCH``) gives a thread its
  fair share of the CPU, but its wake-up does not preempt the event loop's
  thread.  On a shared core such a preemption would only wait for the GIL
  the loop holds: two context switches per hand-off.  ``IDLE``
  (``SCHED_IDLE``) gives a thread only the CPU nothing else wants; the
  archive's index runs so (``store/sqlite/engine.py``).

Where either is unavailable (not Linux, or the system refuses), the thread
keeps running as it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from typing import Any, Literal

Policy = Literal["batch", "idle"]
BATCH: Policy = "batch"
IDLE: Policy = "idle"

_PREFIX = "chatserver-"
_PR_SET_NAME = 15  # prctl(2): the calling thread's name, at most 15 bytes and a NUL
_libc: Any = None


def os_name(name: str) -> bytes:
    """What a thread called ``name`` in Python is called by the operating system."""
    if name.startswith(_PREFIX):
        name = name[len(_PREFIX) :]
    # Cut at 15 bytes on a character's boundary: /proc shows what is set.
    return name.encode("utf-8", "replace")[:15].decode("utf-8", "ignore").encode("utf-8")


def settle(policy: Policy | None = None) -> None:
    """Name the calling thread for the OS and give it ``policy`` (``BATCH``, ``IDLE``)."""
    _set_name(os_name(threading.current_thread().name))
    if policy is not None and hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
        chosen = getattr(os, "SCHED_IDLE", os.SCHED_BATCH) if policy == IDLE else os.SCHED_BATCH
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, chosen, os.sched_param(0))


def _set_name(name: bytes) -> None:
    global _libc
    if not sys.platform.startswith("linux"):  # prctl(2) is Linux's
        return
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
    except (OSError, AttributeError):
        pass
