"""Pages ranked by frustration: the signals (``signals.py``) per 100 visits of each page.

``rank`` reads the newest ``MAX_SESSIONS`` recordings of a period through
the index (``list_recordings``, then each one's marks): a page's visits are
its ``page`` marks, its signals the signal marks whose ``url`` is that page;
URLs are compared without their query and fragment.  Pages with fewer than
``MIN_VISITS`` visits are left out (three visits and one error is not a
rate).  The score orders the table: every signal per 100 visits, summed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from chatserver.types import SiteId

from .index import RecordingIndex
from .signals import KINDS

MAX_SESSIONS = 2000
MIN_VISITS = 5
PAGE = 200


def page_of(url: str) -> str:
    return url.split("#", 1)[0].split("?", 1)[0]


@dataclass
class PageRow:
    url: str
    visits: int = 0
    signals: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # kind -> a recording with it

    def per_100(self, kind: str) -> float:
        return 100.0 * self.signals[kind] / self.visits if self.visits else 0.0

    @property
    def score(self) -> float:
        return sum(self.per_100(k) for k in KINDS)


@dataclass
class Ranking:
    rows: list[PageRow]
    sessions: int  # recordings read
    capped: bool  # the period had more than ``MAX_SESSIONS``


async def rank(
    index: RecordingIndex, site_id: SiteId, since: float, until: float, limit: int = 50
) -> Ranking:
    pages: dict[str, PageRow] = defaultdict(lambda: PageRow(""))
    read = 0
    before = None
    capped = False
    while read < MAX_SESSIONS:
        recs = await index.list_recordings(
            site_id, since=since, until=until, before=before, limit=PAGE
        )
        for rec in recs:
            read += 1
            for mark in await index.recording_marks(rec.id, ["page", *KINDS]):
                url = page_of(str(mark.data.get("url", "")))
                if not url:
                    continue
                row = pages[url]
                row.url = url
                if mark.kind == "page":
                    row.visits += 1
                else:
                    row.signals[mark.kind] += 1
                    row.examples.setdefault(mark.kind, rec.id)
            if read >= MAX_SESSIONS:
                capped = len(recs) == PAGE or rec is not recs[-1]
                break
        if len(recs) < PAGE:
            break
        before = (recs[-1].started, recs[-1].id)
    rows = [r for r in pages.values() if r.visits >= MIN_VISITS and r.signals]
    rows.sort(key=lambda r: (-r.score, r.url))
    return Ranking(rows[:limit], read, capped)
