"""The standard Prometheus process metrics, read when ``/metrics`` is scraped.

The names and meanings are those of the official client libraries'
process collector (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``process_virtual_memory_bytes``,
``process_open_fds``, ``process_max_fds``, ``process_start_time_seconds``),
so stock dashboards work.  On Linux they come from ``/proc/self``; elsewhere
CPU time and peak RSS from ``resource`` and the start time from the moment
this module was imported, and the file descriptor counts are left out.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

_IMPORTED_AT = time.time()
_PROC = "/proc/self"


@dataclass(frozen=True, slots=True)
class ProcessStats:
    cpu_seconds: float
    resident_bytes: int
    virtual_bytes: int | None
    start_time: float  # seconds since the Unix epoch
    open_fds: int | None
    max_fds: int | None


def _boot_time() -> float:
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _from_proc() -> ProcessStats:
    with open(f"{_PROC}/stat") as f:
        # the command name (field 2) may hold spaces: split after its ")"
        fields = f.read().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    # fields[0] is field 3 (state): utime 14, stime 15, starttime 22, vsize 23, rss 24
    utime, stime = int(fields[11]), int(fields[12])
    start = _boot_time() + int(fields[19]) / ticks
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ProcessStats(
        cpu_seconds=(utime + stime) / ticks,
        resident_bytes=int(fields[21]) * page,
        virtual_bytes=int(fields[20]),
        start_time=start,
        open_fds=len(os.listdir(f"{_PROC}/fd")),
        max_fds=None if soft == resource.RLIM_INFINITY else soft,
    )


def _portable() -> ProcessStats:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return ProcessStats(
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        resident_bytes=usage.ru_maxrss * 1024,  # peak, in KiB on most systems
        virtual_bytes=None,
        start_time=_IMPORTED_AT,
        open_fds=None,
        max_fds=None,
    )


def read() -> ProcessStats:
    """This process's figures now."""
    try:
        return _from_proc()
    except (OSError, ValueError, IndexError):
        return _portable()
