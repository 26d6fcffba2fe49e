"""The ``--backends`` tables: relay and ingest figures side by side, one row per target.

One row per target (SQLite, Redis, PostgreSQL + Redis; one process or two),
from the result that ``python -m bench --backends`` writes: the pairs
scenario's latency, the throughput ramp's best step, and session recording
ingest.  *server CPU* is chatserver's processes together (cores), *DB CPU*
what Redis and PostgreSQL used meanwhile (on the same core: see
``bench.backing``); *µs/msg* divides either by the visitor messages relayed
at the throughput ramp's best step (or, when no step passed, its busiest
valid one: the rate is shown).
"""

from __future__ import annotations

from typing import Any

from .report import _fmt, _table
from .servers import ALL_TARGETS


def _processes(target: str) -> int:
    t = ALL_TARGETS.get(target)
    return t.processes if t is not None else 1


def _backend(target: str) -> str:
    t = ALL_TARGETS.get(target)
    return {"sqlite": "SQLite", "redis": "Redis", "postgres+redis": "PostgreSQL + Redis"}.get(
        (t.backend or "") if t else "", target
    )


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.2f} %"


def _cost_step(t: dict[str, Any]) -> dict[str, Any]:
    """Where no step passed (a loaded machine): the busiest step with a valid generator,
    whose CPU per message still says what a message costs."""
    steps = [s for s in t.get("steps", []) if (s.get("generator") or {}).get("valid")]
    return max(steps, key=lambda s: s.get("messages_per_s") or 0, default={})


def relay_rows(sc: dict[str, Any]) -> list[list[Any]]:
    pairs, tp = sc.get("pairs", {}), sc.get("throughput", {})
    rows = []
    for target in [t for t in ALL_TARGETS if t in pairs or t in tp]:
        if not ALL_TARGETS[target].chatserver:
            continue
        p, t = pairs.get(target, {}), tp.get(target, {})
        lat = p.get("latency_ms", {})
        chats = (p.get("config") or {}).get("chats")
        best = t.get("best") or {}
        cost = best or _cost_step(t)
        if "error" in t:
            rate = "error"
        elif t:
            bound = "≥ " if t.get("limited_by") != "server" else ""
            rate = f"{bound}{_fmt(t.get('max_msgs_per_s'), 0)}"
        else:
            rate = "-"
        rows.append(
            [
                _backend(target),
                _processes(target),
                "error" if "error" in p else chats,
                lat.get("p50"),
                lat.get("p99"),
                _percent(p.get("delivered_ratio")),
                _fmt(p.get("server_cpu"), 2),
                _fmt(p.get("backing_cpu"), 2),
                rate,
                best.get("p99_ms"),
                _fmt(cost.get("offered_msgs_per_s"), 0),
                cost.get("server_cpu_us_per_msg"),
                cost.get("backing_cpu_us_per_msg"),
            ]
        )
    return rows


def ingest_rows(sc: dict[str, Any], name: str = "ingest") -> list[list[Any]]:
    rows = []
    for target, r in sc.get(name, {}).items():
        if "error" in r:
            rows.append([_backend(target), _processes(target), "error", *[""] * 5])
            continue
        events = r.get("events_per_s") or 0
        cpu = (r.get("server_cpu") or 0) + (r.get("backing_cpu") or 0)
        rows.append(
            [
                _backend(target),
                _processes(target),
                (r.get("config") or {}).get("connections"),
                events,
                r.get("batches_per_s"),
                _fmt(r.get("server_cpu"), 2),
                _fmt(r.get("backing_cpu"), 2),
                round(events / cpu) if cpu > 0 else None,
            ]
        )
    return rows


def render_backends(results: dict[str, Any]) -> str:
    sc = results.get("scenarios", {})
    meta = results.get("meta", {})
    lines = [
        "",
        f"## chatserver by backend ({meta.get('plan')}, load average "
        f"{', '.join(_fmt(x, 2) for x in meta.get('load_average') or [])})",
        "",
    ]
    versions = meta.get("backing_versions")
    if versions:
        lines += [f"{versions.get('redis')}; {versions.get('postgresql')}", ""]
    rows = relay_rows(sc)
    if rows:
        lines += _table(
            [
                "backend",
                "processes",
                "chats",
                "p50 ms",
                "p99 ms",
                "delivered",
                "server CPU",
                "DB CPU",
                "throughput msg/s",
                "p99 ms at it",
                "CPU cost at msg/s",
                "server µs/msg",
                "DB µs/msg",
            ],
            rows,
        )
        lines.append("")
    for name, what in (("ingest", "as recorded"), ("ingest_dense", "busy visitors")):
        rows = ingest_rows(sc, name)
        if rows:
            lines.append(f"Session recording ingest ({what}):")
            lines.append("")
            lines += _table(
                [
                    "backend",
                    "processes",
                    "visitors",
                    "events/s",
                    "batches/s",
                    "server CPU",
                    "DB CPU",
                    "events per CPU s (server + DB)",
                ],
                rows,
            )
            lines.append("")
    return "\n".join(lines)
