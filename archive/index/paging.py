"""The page assembly shared by the indexed backends (SQLite, PostgreSQL).

A text search reads matching texts newest first, ``(seq, offset)``
descending, in batches from the cursor down (``FIRST_BATCH`` texts, then
twice as many each time, up to ``BATCH``); keeps the conversations that
pass the filters, with up to ``MATCHES`` texts each; and stops when the page
is full, when the texts run out, or after ``MAX_BATCHES`` batches (then the
page may be short, and its cursor goes on from where it stopped).  Every
cursor is a conversation number: the next page holds conversations whose
``seq`` is below it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from chatserver.types import Conversation

from ..query import MATCHES, ArchiveHit, ArchivePage, BadCursor

FIRST_BATCH = 200  # texts read first; each next batch doubles, up to BATCH
BATCH = 5000
MAX_BATCHES = 12  # per page (about 40,000 texts)
TOP = 2**39  # above every seq

# (below (seq, offset), exclusive; size) -> up to size rows (seq, offset, text), descending
FetchBatch = Callable[[tuple[int, int], int], Awaitable[Sequence[tuple[int, int, str]]]]
# seqs -> the conversations among them that pass the filters
Passing = Callable[[list[int]], Awaitable[dict[int, Conversation]]]


def parse_cursor(cursor: str | None) -> int:
    """The ``seq`` a cursor stands for (every seq below it is still to come)."""
    if cursor is None:
        return TOP
    try:
        seq = int(cursor)
    except ValueError:
        raise BadCursor(cursor) from None
    if not 0 < seq <= TOP:
        raise BadCursor(cursor)
    return seq


async def text_page(fetch: FetchBatch, passing: Passing, below: int, limit: int) -> ArchivePage:
    upper = (below, 0)
    batch = FIRST_BATCH
    hits: list[ArchiveHit] = []
    where: dict[int, int] = {}  # seq -> position in hits
    last_seq = below
    for _ in range(MAX_BATCHES):
        rows = await fetch(upper, batch)
        if not rows:
            return ArchivePage(hits, None)
        found: dict[int, list[tuple[int, str]]] = {}
        for seq, offset, text in rows:
            found.setdefault(seq, []).append((offset, text))
        convs = await passing(list(found))
        for seq, texts in found.items():  # newest first (dicts keep order)
            last_seq = seq
            conv = convs.get(seq)
            if conv is None:
                continue
            if seq in where:  # its texts went on in this batch
                old = hits[where[seq]]
                hits[where[seq]] = ArchiveHit(conv, (*old.matches, *texts)[:MATCHES])
                continue
            if len(hits) == limit:
                return ArchivePage(hits, str(seq + 1))  # this one starts the next page
            where[seq] = len(hits)
            hits.append(ArchiveHit(conv, tuple(texts[:MATCHES])))
        upper = (rows[-1][0], rows[-1][1])
        if len(rows) < batch:
            return ArchivePage(hits, None)
        batch = min(batch * 2, BATCH)
    return ArchivePage(hits, str(last_seq))
