"""What an archive search asks and answers, shared by every backend.

``ArchiveQuery`` is one search: a site, optional words and the filters of the
conversations page.  ``ArchivePage`` is one page of answers, newest
conversation first, with an opaque ``cursor`` for the next page (keyset
pagination: a page costs the same however deep it is).  Each answer is an
``ArchiveHit``: the conversation and up to ``MATCHES`` of its texts that
matched the words (entry offset and text; offset 0 is the visitor's name and
e-mail).

Words are matched as prefixes, every word must match (in any text of the
conversation), case and accents ignored: "envio" finds "Envío".  ``words``
splits what the user typed; ``fold`` is the comparison form; ``highlight``
cuts a text into plain and matched pieces, which the page escapes one by
one (a backend never returns markup).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from chatserver.proactive.names import PROACTIVE_TAG
from chatserver.types import AgentId, Conversation, ConvState, Entry, EntryKind, SiteId

MATCHES = 3  # matched texts shown per conversation
MAX_WORDS = 8  # words of a search kept (the rest are ignored)
MAX_WORD = 64  # characters of a word kept
_WORD = re.compile(r"\w+", re.UNICODE)


def fold(text: str) -> str:
    """``text`` without accents, case-folded: what matching compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> tuple[str, ...]:
    """The search words of ``text`` (folded, letters and digits only, at most ``MAX_WORDS``)."""
    found: list[str] = []
    for w in _WORD.findall(fold(text)):
        w = w[:MAX_WORD]
        if w not in found:
            found.append(w)
    return tuple(found[:MAX_WORDS])


def matches_all(text: str, wanted: tuple[str, ...]) -> set[str]:
    """The words of ``wanted`` that some word of ``text`` starts with."""
    tokens = _WORD.findall(fold(text))
    return {w for w in wanted if any(t.startswith(w) for t in tokens)}


def highlight(text: str, wanted: tuple[str, ...], limit: int = 240) -> list[tuple[str, bool]]:
    """``text`` as ``(piece, matched)`` pieces, shortened around the first match.

    Plain text only: the caller escapes every piece (and wraps matched ones
    in ``<mark>``).
    """
    spans: list[tuple[int, int]] = []
    for m in _WORD.finditer(text):
        token = fold(m.group())
        if any(token.startswith(w) for w in wanted):
            spans.append(m.span())
    start = 0
    if len(text) > limit and spans:
        start = max(0, spans[0][0] - limit // 3)
    end = min(len(text), start + limit)
    pieces: list[tuple[str, bool]] = []
    if start > 0:
        pieces.append(("…", False))
    at = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        if s > at:
            pieces.append((text[at:s], False))
        pieces.append((text[s:e], True))
        at = e
    if at < end:
        pieces.append((text[at:end], False))
    if end < len(text):
        pieces.append(("…", False))
    return pieces


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """One search of a site's conversations; ``None`` (or empty) means "any"."""

    site_id: SiteId
    text: str = ""
    states: tuple[ConvState, ...] = ()
    agent: AgentId | None = None
    department: str | None = None
    tag: str | None = None
    rating: str | None = None
    since: float | None = None  # created_at >= since
    until: float | None = None  # created_at < until
    offline: bool | None = None
    trigger: bool | None = None  # opened by a proactive trigger (tag ``proactive``)
    attachments: bool | None = None  # a file was posted in it

    @property
    def words(self) -> tuple[str, ...]:
        return words(self.text)


@dataclass(frozen=True, slots=True)
class ArchiveHit:
    conv: Conversation
    matches: tuple[tuple[int, str], ...] = ()  # (entry offset, text); offset 0: the visitor


@dataclass(frozen=True, slots=True)
class ArchivePage:
    hits: list[ArchiveHit] = field(default_factory=list)
    cursor: str | None = None  # the next page's, or ``None`` on the last page


class BadCursor(ValueError):
    """A page cursor that this backend did not make."""


def conv_passes(q: ArchiveQuery, conv: Conversation, has_files: bool | None = None) -> bool:
    """Whether ``conv`` passes the filters of ``q`` (the text apart).

    ``has_files`` (whether a file was posted in it): ``None`` when not known,
    and then the ``attachments`` filter is left to the caller.
    """
    if conv.site_id != q.site_id:
        return False
    if q.states and conv.state not in q.states:
        return False
    if q.agent is not None and q.agent not in conv.agents:
        return False
    if q.department is not None and conv.department != q.department:
        return False
    if q.tag is not None and q.tag not in conv.tags:
        return False
    if q.rating is not None and conv.rating != q.rating:
        return False
    if q.since is not None and conv.created_at < q.since:
        return False
    if q.until is not None and conv.created_at >= q.until:
        return False
    if q.offline is not None and conv.offline != q.offline:
        return False
    if q.trigger is not None and (PROACTIVE_TAG in conv.tags) != q.trigger:
        return False
    return q.attachments is None or has_files is None or has_files == q.attachments


def indexed(entry: Entry) -> bool:
    """Whether an entry's body is searched: texts and notes that say something."""
    return entry.kind in (EntryKind.TEXT, EntryKind.NOTE) and bool(entry.body.strip())
