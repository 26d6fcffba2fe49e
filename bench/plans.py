"""The sizes and rates of ``--smoke``, ``--quick`` and the full run.

An *active chat* is a visitor and an agent who each send a message every
ten seconds (0.1 msg/s per side) while the visitor's draft preview updates
once a second.  Rates stay far under the per-connection limit (20 frames/s,
burst 60): an agent with 20 chats sends 2 frames/s.  The throughput ramp
drives visitors only (no replies, no previews), doubling the rate past the
listed steps until each server fails (``bench/ramp.py``).  The full run's
``many`` scenario is the pairs workload at 10,000 active chats (2,000
messages and 10,000 previews a second) on one server process.  The
slow-consumer scenario makes visitors type hard (8 drafts/s of ~2 KB) so
that the stalled agent's 20 conversations push ~300 KB/s at it.
"""

from __future__ import annotations

from typing import TypedDict

from .ingest import Ingest
from .scenarios import Plan, Traffic


class Rates(TypedDict):
    """The per-chat rates of a ``Traffic`` (per second)."""

    visitor_msg: float
    agent_msg: float
    visitor_typing: float


ACTIVE: Rates = {"visitor_msg": 0.1, "agent_msg": 0.1, "visitor_typing": 1.0}


def smoke() -> Plan:
    """A few pairs for a couple of seconds, chatserver only: checks the harness."""
    return Plan(
        name="smoke",
        idle_levels=[],
        pairs=Traffic(
            chats=4,
            capacity=4,
            agents_per_site=1,
            visitor_msg=2.0,
            agent_msg=1.0,
            visitor_typing=2.0,
            warmup=0.5,
            measure=1.5,
            drain=5.0,
            verify=True,
        ),
        fanout=None,
        throughput=None,
    )


def quick() -> Plan:
    """Every scenario, small: about two minutes."""
    return Plan(
        name="quick",
        idle_levels=[1000],
        pairs=Traffic(chats=200, warmup=1.0, measure=4.0, drain=2.0, **ACTIVE),
        fanout=Traffic(
            chats=40, capacity=10, fanout=4, warmup=1.0, measure=4.0, drain=2.0, **ACTIVE
        ),
        fanout_targets=["chatserver"],
        throughput=Traffic(chats=200, warmup=0.5, measure=1.2, drain=1.5),
        throughput_steps=[800, 1600, 3200],
        throughput_bisect=0,  # doubling only: --quick gives each ratio within a factor of 2
        throughput_retries=1,
        throughput_extend=2,  # on to 12800/s if nothing failed by 3200/s
        throughput_budget_s=60.0,
        storm=Traffic(
            chats=100,
            visitor_msg=1.0,
            agent_msg=0.25,
            visitor_typing=0.0,
            warmup=1.0,
            measure=4.0,
            drain=8.0,
            storm={"at": 2.0, "jitter": 1.0},
        ),
        slow=Traffic(
            chats=100,
            visitor_msg=0.5,
            agent_msg=0.25,
            visitor_typing=8.0,
            pad=1900,
            warmup=1.0,
            measure=5.5,
            drain=2.0,
            stall={"at": 3.0},
        ),
        ingest=Ingest(connections=200, warmup=1.0, measure=3.0),
        ingest_dense=Ingest(connections=100, warmup=1.0, measure=3.0, dense=True),
    )


def full() -> Plan:
    """The sizes the issue's targets are stated at."""
    return Plan(
        name="full",
        idle_levels=[1000, 5000, 10000],
        pairs=Traffic(chats=1000, warmup=3.0, measure=20.0, drain=5.0, **ACTIVE),
        pairs_repeats=3,
        pairs_sync_normal=True,
        many=Traffic(chats=10_000, capacity=20, warmup=5.0, measure=15.0, drain=8.0, **ACTIVE),
        fanout=Traffic(
            chats=200, capacity=10, fanout=4, warmup=2.0, measure=10.0, drain=5.0, **ACTIVE
        ),
        throughput=Traffic(chats=1000, warmup=1.0, measure=5.0, drain=4.0),
        throughput_steps=[400, 800, 1600, 3200, 6400],
        throughput_bisect=3,
        throughput_extend=4,  # on to 102400/s: every server is driven until it fails
        storm=Traffic(
            chats=1000,
            visitor_msg=0.5,
            agent_msg=0.1,
            visitor_typing=0.0,
            warmup=2.0,
            measure=15.0,
            drain=15.0,
            storm={"at": 6.0, "jitter": 3.0},
        ),
        slow=Traffic(
            chats=100,
            visitor_msg=0.5,
            agent_msg=0.25,
            visitor_typing=8.0,
            pad=1900,
            warmup=2.0,
            measure=20.0,
            drain=5.0,
            stall={"at": 7.0},
        ),
        ingest=Ingest(connections=600, warmup=2.0, measure=15.0),
        ingest_dense=Ingest(connections=200, warmup=2.0, measure=15.0, dense=True),
    )


def backends(size: str) -> Plan:
    """``--backends``: relay (pairs, throughput) and ingest on each backend.

    ``size`` is ``smoke`` (a few pairs and recorders for a second: checks the
    targets), ``quick`` (a few minutes) or ``full``.
    """
    if size == "smoke":
        base = smoke()
        base.name = "backends-smoke"
        base.ingest = Ingest(
            connections=4, per_conn_rate=5.0, warmup=0.5, measure=1.5, compression=False
        )
        return base
    if size == "quick":
        return Plan(
            name="backends-quick",
            idle_levels=[],
            pairs=Traffic(chats=200, warmup=1.0, measure=5.0, drain=2.0, **ACTIVE),
            fanout=None,
            throughput=Traffic(chats=200, warmup=0.5, measure=1.5, drain=1.5),
            throughput_steps=[400, 800, 1600, 3200],
            throughput_bisect=1,
            throughput_retries=1,
            throughput_extend=2,
            throughput_budget_s=120.0,
            ingest=Ingest(connections=100, warmup=1.0, measure=4.0, compression=False),
        )
    return Plan(
        name="backends-full",
        idle_levels=[],
        pairs=Traffic(chats=1000, warmup=3.0, measure=15.0, drain=5.0, **ACTIVE),
        fanout=None,
        throughput=Traffic(chats=1000, warmup=1.0, measure=4.0, drain=4.0),
        throughput_steps=[400, 800, 1600, 3200, 6400],
        throughput_bisect=2,
        throughput_extend=3,
        ingest=Ingest(connections=400, warmup=2.0, measure=10.0, compression=False),
        ingest_dense=Ingest(
            connections=100, warmup=2.0, measure=10.0, dense=True, compression=False
        ),
    )
