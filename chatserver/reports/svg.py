"""The reports' charts as SVG drawn on the server (no JavaScript, no chart library).

Why: three small charts (a bar chart per day, a weekday x hour heatmap and
the satisfaction shares) need about 150 lines here; a chart library would be
a JS bundle to ship, pin and review, and the page would need a script and a
JSON fetch.  Each chart is an ``<svg role="img">`` with a ``<title>`` and a
``<desc>``, every mark has its own ``<title>`` (a tooltip and a name for
screen readers), and the page puts the same numbers in a table after it.
Every text is escaped here (``html.escape``); the result is ``Markup``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from agent_console.i18n import N_, _

from ..types import RATINGS

# Words the charts show, translated when drawn (the series and the answers).
WORDS = (N_("started"), N_("served"), N_("missed"), N_("great"), N_("okay"), N_("poor"))
DAY_NAMES = (N_("Mon"), N_("Tue"), N_("Wed"), N_("Thu"), N_("Fri"), N_("Sat"), N_("Sun"))

COLORS = {"started": "#2563eb", "served": "#16a34a", "missed": "#dc2626", "offline": "#9ca3af"}
RATING_COLORS = {"great": "#16a34a", "okay": "#f59e0b", "poor": "#dc2626"}


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" class="chart"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>"
    )
    return Markup(head + "".join(body) + "</svg>")


def daily_bars(rows: Sequence[tuple[object, ...]], title: str = "") -> Markup:
    """Grouped bars (started, served, missed) per day; ``rows`` are the daily table's."""
    title = title or _("Conversations per day")
    series = ("started", "served", "missed")
    n = max(1, len(rows))
    top = max([1, *(int(v) for r in rows for v in r[1:4])])  # type: ignore[call-overload]
    width, height, pad, base = max(320, 24 * n + 60), 220, 40, 190
    step = (width - pad - 10) / n
    bar = max(1.0, step / 4)
    body = [
        f'<line x1="{pad}" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#6b7280"/>',
        f'<text x="4" y="20" font-size="11">{top}</text>',
        f'<text x="4" y="{base}" font-size="11">0</text>',
    ]
    for i, row in enumerate(rows):
        x0 = pad + i * step + step / 8
        for j, name in enumerate(series):
            value = int(row[1 + j])  # type: ignore[call-overload]
            h = (base - 20) * value / top
            body.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}"'
                f' height="{h:.1f}" fill="{COLORS[name]}"><title>{escape(str(row[0]))}:'
                f" {value} {escape(_(name))}</title></rect>"
            )
        if n <= 14 or i % max(1, n // 7) == 0:
            label = escape(str(row[0])[5:])
            body.append(f'<text x="{x0:.1f}" y="{base + 14}" font-size="10">{label}</text>')
    for j, name in enumerate(series):
        body.append(
            f'<rect x="{pad + 90 * j}" y="4" width="10" height="10" fill="{COLORS[name]}"/>'
            f'<text x="{pad + 90 * j + 14}" y="13" font-size="11">{escape(_(name))}</text>'
        )
    desc = "; ".join(
        _("%(day)s: %(started)s started, %(served)s served, %(missed)s missed")
        % {"day": r[0], "started": r[1], "served": r[2], "missed": r[3]}
        for r in rows
    )
    return _svg(width, height, title, desc or _("no conversations"), body)


def heatmap(rows: Sequence[tuple[object, ...]], title: str = "") -> Markup:
    """A weekday x hour grid, darker for more conversations started."""
    title = title or _("Busiest hours")
    top = max([1, *(int(v) for r in rows for v in r[1:])])  # type: ignore[call-overload]
    cell, left, topm = 22, 40, 20
    body = [
        f'<text x="{left + h * cell + 3}" y="14" font-size="10">{h:02d}</text>'
        for h in range(0, 24, 3)
    ]
    for d, row in enumerate(rows):
        day = escape(_(str(row[0])))
        body.append(f'<text x="4" y="{topm + d * cell + 15}" font-size="11">{day}</text>')
        for h in range(24):
            value = int(row[1 + h])  # type: ignore[call-overload]
            alpha = 0.06 + 0.94 * value / top if value else 0.03
            body.append(
                f'<rect x="{left + h * cell}" y="{topm + d * cell}" width="{cell - 2}"'
                f' height="{cell - 2}" fill="#2563eb" fill-opacity="{alpha:.2f}">'
                f"<title>{day} {h:02d}:00: {value}</title></rect>"
            )
    busiest = max(
        ((int(r[1 + h]), str(r[0]), h) for r in rows for h in range(24)),  # type: ignore[call-overload]
        default=(0, "", 0),
    )
    desc = _(
        "Conversations started by weekday and hour; busiest: %(day)s %(hour)s:00 with %(n)s"
    ) % {"day": _(busiest[1]) if busiest[1] else "", "hour": f"{busiest[2]:02d}", "n": busiest[0]}
    return _svg(left + 24 * cell + 4, topm + 7 * cell + 4, title, desc, body)


def rating_bar(counts: dict[str, int], title: str = "") -> Markup:
    """One horizontal bar split by the share of each answer."""
    title = title or _("Satisfaction")
    total = sum(counts.values())
    width, x = 480, 0.0
    body: list[str] = []
    for r in RATINGS:
        n = counts.get(r, 0)
        if not total or not n:
            continue
        w = width * n / total
        pct = round(100 * n / total)
        body.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="28" fill="{RATING_COLORS[r]}">'
            f"<title>{escape(_(r))}: {n} ({pct}%)</title></rect>"
        )
        if w > 60:
            word = escape(_(r))
            body.append(
                f'<text x="{x + 6:.1f}" y="19" font-size="12" fill="#fff">{word} {pct}%</text>'
            )
        x += w
    desc = ", ".join(f"{_(r)}: {counts.get(r, 0)}" for r in RATINGS) if total else _("no ratings")
    return _svg(width, 28, title, desc, body)
