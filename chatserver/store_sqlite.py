"""The embedded Store: one SQLite file in WAL mode, written by one thread.

Every operation is a function of a ``sqlite3.Connection`` run on a dedicated
thread.  The writer thread takes whatever operations are waiting, runs them in
one transaction (each in its own savepoint, so one failure does not undo the
others), commits once and only then resolves the callers' futures: group
commit, one fsync for many messages.  With ``synchronous=FULL`` (default) a
resolved write survives a power cut; ``normal`` survives a kill -9 only.

Plain reads (``_read_one``, ``_read_all``, ``_read``) run on a second thread
with a read-only connection, so they never wait behind a commit's fsync.  WAL
readers see every transaction committed before the read starts, and a write's
future resolves only after its commit, so a read issued after an awaited write
sees it.  Operations submitted during one event-loop iteration reach their
thread with one wake-up and come back with one (``_Lane``).

The schema is ``migrations_sqlite``: the writer's connection brings the file
to its last numbered step before it takes any operation, and a file written
by a newer chatserver is refused (``StoreError``) before any operation runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from . import migrations_sqlite
from .errors import Closed, NotFound, NotMember, StoreError
from .store import (
    ATTACHMENT_BYTES,
    MAX_PAGE_VIEWS,
    MAX_VISITOR_EVENTS,
    VISIT_GAP,
    apply_batch,
    merge_attributes,
    throttle_delay,
)
from .types import (
    JSON,
    KEEP,
    Agent,
    AgentId,
    Attachment,
    AuthorKind,
    Conversation,
    ConversationId,
    ConvState,
    DepartmentId,
    Doc,
    Entry,
    EntryKind,
    Firing,
    Keep,
    PageView,
    Recording,
    RecordingBatch,
    RecordingId,
    RecordingMark,
    Role,
    Site,
    SiteId,
    SiteSettings,
    Visitor,
    VisitorEvent,
    VisitorId,
    new_id,
    now,
)

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Job = tuple[Op, "asyncio.Future[Any]"]
Results = list[tuple["asyncio.Future[Any]", Any, BaseException | None]]
MAX_BATCH = 256  # operations per transaction

_REC_COLS = (
    "id, site_id, visitor_id, blob, created_at, skew_ms, started, ended, first_ts, last_ts, "
    "last_seq, events, bytes, raw_bytes, clicks, inputs, pages, marks, conv_id"
)

_REC_UPDATE = "UPDATE recordings SET {} WHERE id = ?".format(
    ", ".join(f"{c.strip()} = ?" for c in _REC_COLS.split(",")[1:])
)

_SITE_COLS = "id, key, name, origins, settings, departments, created_at"
_AGENT_COLS = (
    "id, site_id, email, name, password_hash, role, capacity, departments, disabled, created_at"
)
_CONV_INSERT_COLS = (
    "id, site_id, visitor_id, epoch, state, created_at, queued_at, department, agents, "
    "last_offset, offline, closed_at"
)
# Columns added after the first schema have defaults, so INSERTs leave them out.
_CONV_COLS = f"{_CONV_INSERT_COLS}, rating, rating_comment, rated_at, tags"
_ATTACHMENT_COLS = "id, site_id, uploader, name, content_type, size, created_at, conv_id"
_ENTRY_COLS = "conv_id, offset, kind, author_kind, author_id, author_name, body, ts, cid, data"


def _add_bytes(db: sqlite3.Connection, site_id: SiteId, *, unposted: int, total: int) -> None:
    """Move a site's attachment byte counters (``Store.attachment_bytes``)."""
    for name, by in (("unposted_bytes", unposted), ("total_bytes", total)):
        if by:
            db.execute(
                "INSERT INTO counters (site_id, grp, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = value + excluded.value",
                (site_id, ATTACHMENT_BYTES, name, by),
            )


_VISITOR_COLS = (
    "id, site_id, created_at, name, email, attributes, last_agent_id, visits, user_id, verified"
)


def _visitor(row: sqlite3.Row) -> Visitor:
    return Visitor(
        id=row[0],
        site_id=row[1],
        created_at=row[2],
        name=row[3],
        email=row[4],
        attributes=json.loads(row[5]),
        last_agent_id=row[6],
        visits=row[7],
        user_id=row[8],
        verified=bool(row[9]),
    )


def _visitor_of(db: sqlite3.Connection, visitor_id: VisitorId) -> Visitor:
    row = db.execute(f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ?", (visitor_id,)).fetchone()
    if row is None:
        raise NotFound(f"no visitor {visitor_id}")
    return _visitor(row)


def _site(row: sqlite3.Row) -> Site:
    return Site(
        id=row[0],
        key=row[1],
        name=row[2],
        allowed_origins=tuple(json.loads(row[3])),
        settings=SiteSettings.from_json(json.loads(row[4])),
        departments=tuple(json.loads(row[5])),
        created_at=row[6],
    )


def _agent(row: sqlite3.Row) -> Agent:
    return Agent(
        id=row[0],
        site_id=row[1],
        email=row[2],
        name=row[3],
        password_hash=row[4],
        role=Role(row[5]),
        capacity=row[6],
        departments=tuple(json.loads(row[7])),
        disabled=bool(row[8]),
        created_at=row[9],
    )


def _conv(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row[0],
        site_id=row[1],
        visitor_id=row[2],
        epoch=row[3],
        state=ConvState(row[4]),
        created_at=row[5],
        queued_at=row[6],
        department=row[7],
        agents=tuple(json.loads(row[8])),
        last_offset=row[9],
        offline=bool(row[10]),
        closed_at=row[11],
        rating=row[12],
        rating_comment=row[13],
        rated_at=row[14],
        tags=tuple(json.loads(row[15])),
    )


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        conversation_id=row[0],
        offset=row[1],
        kind=EntryKind(row[2]),
        author_kind=AuthorKind(row[3]),
        author_id=row[4],
        author_name=row[5],
        body=row[6],
        ts=row[7],
        cid=row[8],
        data=json.loads(row[9]) if row[9] else {},
    )


class SQLiteStore:
    """``Store`` on a SQLite file (see module docstring for the threading)."""

    def __init__(self, path: Path | str, *, synchronous: str = "full") -> None:
        if synchronous.lower() not in ("full", "normal"):
            raise ValueError("synchronous must be 'full' or 'normal'")
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._writer: _Lane | None = None
        self._reader: _Lane | None = None

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> None:
        writer = _Lane("chatserver-sqlite", self._connect, self._run_batch)
        await writer.start()  # migrates the schema first (migrations_sqlite)
        reader = _Lane("chatserver-sqlite-read", self._connect_reader, _run_reads)
        try:
            await reader.start()
        except BaseException:
            await writer.close()
            raise
        self._writer, self._reader = writer, reader

    async def close(self) -> None:
        lanes = [lane for lane in (self._reader, self._writer) if lane is not None]
        self._writer = self._reader = None
        for lane in lanes:
            await lane.close()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        try:  # the schema of migrations_sqlite, or StoreError for a newer file
            migrations_sqlite.migrate(db, name=str(self.path))
        except BaseException:
            db.close()
            raise
        return db

    def _connect_reader(self) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA query_only=ON")
        return db

    @staticmethod
    def _run_batch(db: sqlite3.Connection, batch: list[Job]) -> Results:
        results: Results = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for op, fut in batch:
                db.execute("SAVEPOINT op")
                try:
                    results.append((fut, op(db), None))
                    db.execute("RELEASE op")
                except Exception as exc:
                    db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                    results.append((fut, None, exc))
            db.execute("COMMIT")
        except sqlite3.Error as exc:  # the commit itself failed: nothing is durable
            if db.in_transaction:
                db.execute("ROLLBACK")
            err = StoreError(f"sqlite: {exc}")
            return [(fut, None, err) for _, fut in batch]
        return results

    async def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the writer, in a transaction; resolves after the commit."""
        if self._writer is None:
            raise StoreError("store is not started")
        return await self._writer.submit(op)  # type: ignore[no-any-return]

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` on the read-only connection (it must not write)."""
        if self._reader is None:
            raise StoreError("store is not started")
        return await self._reader.submit(op)  # type: ignore[no-any-return]

    # -- sites -----------------------------------------------------------

    async def create_site(
        self,
        name: str,
        allowed_origins: Sequence[str] = (),
        settings: SiteSettings | None = None,
        departments: Sequence[DepartmentId] = (),
    ) -> Site:
        site = Site(
            id=new_id("s"),
            key=new_id("pk").replace("_", "")[:24],
            name=name,
            allowed_origins=tuple(allowed_origins),
            settings=settings or SiteSettings(),
            departments=tuple(departments),
            created_at=now(),
        )

        def op(db: sqlite3.Connection) -> Site:
            db.execute(
                f"INSERT INTO sites ({_SITE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    site.id,
                    site.key,
                    site.name,
                    json.dumps(site.allowed_origins),
                    json.dumps(site.settings.to_json()),
                    json.dumps(site.departments),
                    site.created_at,
                ),
            )
            db.execute(
                "UPDATE sites SET identity_secret = ? WHERE id = ?",
                (secrets.token_hex(32), site.id),
            )
            return site

        return await self._run(op)

    async def _one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await self._run(lambda db: db.execute(sql, args).fetchone())

    async def _all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self._run(lambda db: db.execute(sql, args).fetchall())

    async def _read_one(self, sql: str, args: tuple[Any, ...]) -> Any:
        return await self._read(lambda db: db.execute(sql, args).fetchone())

    async def _read_all(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return await self._read(lambda db: db.execute(sql, args).fetchall())

    async def get_site(self, site_id: SiteId) -> Site | None:
        row = await self._read_one(f"SELECT {_SITE_COLS} FROM sites WHERE id = ?", (site_id,))
        return _site(row) if row else None

    async def site_by_key(self, key: str) -> Site | None:
        row = await self._read_one(f"SELECT {_SITE_COLS} FROM sites WHERE key = ?", (key,))
        return _site(row) if row else None

    async def save_site(self, site: Site) -> None:
        def op(db: sqlite3.Connection) -> None:
            cur = db.execute(
                "UPDATE sites SET name = ?, origins = ?, settings = ?, departments = ?"
                " WHERE id = ?",
                (
                    site.name,
                    json.dumps(site.allowed_origins),
                    json.dumps(site.settings.to_json()),
                    json.dumps(site.departments),
                    site.id,
                ),
            )
            if cur.rowcount == 0:
                raise NotFound(f"site {site.id}")

        await self._run(op)

    async def list_sites(self) -> list[Site]:
        return [_site(r) for r in await self._read_all(f"SELECT {_SITE_COLS} FROM sites", ())]

    # -- agents ----------------------------------------------------------

    async def create_agent(
        self,
        site_id: SiteId,
        email: str,
        name: str,
        password_hash: str,
        role: Role = Role.AGENT,
        capacity: int = 5,
        departments: Sequence[DepartmentId] = (),
    ) -> Agent:
        agent = Agent(
            id=new_id("a"),
            site_id=site_id,
            email=email.strip(),
            name=name,
            password_hash=password_hash,
            role=role,
            capacity=capacity,
            departments=tuple(departments),
            created_at=now(),
        )

        def op(db: sqlite3.Connection) -> Agent:
            try:
                db.execute(
                    f"INSERT INTO agents ({_AGENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (
                        agent.id,
                        agent.site_id,
                        agent.email,
                        agent.name,
                        agent.password_hash,
                        agent.role.value,
                        agent.capacity,
                        json.dumps(agent.departments),
                        agent.created_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"an agent with email {agent.email!r} exists") from exc
            return agent

        return await self._run(op)

    async def get_agent(self, agent_id: AgentId) -> Agent | None:
        row = await self._read_one(f"SELECT {_AGENT_COLS} FROM agents WHERE id = ?", (agent_id,))
        return _agent(row) if row else None

    async def agent_by_email(self, email: str) -> Agent | None:
        row = await self._read_one(
            f"SELECT {_AGENT_COLS} FROM agents WHERE email = ?", (email.strip(),)
        )
        return _agent(row) if row else None

    async def save_agent(self, agent: Agent) -> None:
        def op(db: sqlite3.Connection) -> None:
            old = db.execute("SELECT role, disabled FROM agents WHERE id = ?", (agent.id,))
            before = old.fetchone()
            try:
                cur = db.execute(
                    "UPDATE agents SET email = ?, name = ?, password_hash = ?, role = ?,"
                    " capacity = ?, departments = ?, disabled = ? WHERE id = ?",
                    (
                        agent.email,
                        agent.name,
                        agent.password_hash,
                        agent.role.value,
                        agent.capacity,
                        json.dumps(agent.departments),
                        int(agent.disabled),
                        agent.id,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"an agent with email {agent.email!r} exists") from exc
            if cur.rowcount == 0:
                raise NotFound(f"agent {agent.id}")
            chatted = before[0] != Role.ANALYST.value and not before[1]
            if chatted and not agent.takes_chats:  # in the same transaction as the save
                db.execute(
                    "INSERT INTO session_generations (agent_id, generation) VALUES (?, 1)"
                    " ON CONFLICT (agent_id) DO UPDATE SET generation = generation + 1",
                    (agent.id,),
                )

        await self._run(op)

    async def set_password_hash(self, agent_id: AgentId, old: str, new: str) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE agents SET password_hash = ? WHERE id = ? AND password_hash = ?",
                (new, agent_id, old),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def list_agents(self, site_id: SiteId) -> list[Agent]:
        rows = await self._read_all(
            f"SELECT {_AGENT_COLS} FROM agents WHERE site_id = ? ORDER BY created_at", (site_id,)
        )
        return [_agent(r) for r in rows]

    # -- visitors --------------------------------------------------------

    async def create_visitor(self, site_id: SiteId, visitor_id: VisitorId | None = None) -> Visitor:
        visitor = Visitor(id=visitor_id or new_id("v"), site_id=site_id, created_at=now())

        def op(db: sqlite3.Connection) -> Visitor:
            db.execute(
                "INSERT OR IGNORE INTO visitors (id, site_id, created_at) VALUES (?, ?, ?)",
                (visitor.id, visitor.site_id, visitor.created_at),
            )
            return _visitor_of(db, visitor.id)

        return await self._run(op)

    async def get_visitor(self, visitor_id: VisitorId) -> Visitor | None:
        row = await self._read_one(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ?",
            (visitor_id,),
        )
        return None if row is None else _visitor(row)

    async def set_last_agent(self, visitor_id: VisitorId, agent_id: AgentId) -> None:
        await self._run(
            lambda db: db.execute(
                "UPDATE visitors SET last_agent_id = ? WHERE id = ?", (agent_id, visitor_id)
            )
        )

    async def update_visitor(
        self,
        visitor_id: VisitorId,
        *,
        name: str | None = None,
        email: str | None = None,
        attributes: JSON | None = None,
    ) -> Visitor:
        def op(db: sqlite3.Connection) -> Visitor:
            visitor = _visitor_of(db, visitor_id)
            changed = replace(
                visitor,
                name=visitor.name if name is None else name,
                email=visitor.email if email is None else email,
                attributes=merge_attributes(visitor.attributes, attributes or {}),
            )
            db.execute(
                "UPDATE visitors SET name = ?, email = ?, attributes = ? WHERE id = ?",
                (changed.name, changed.email, json.dumps(changed.attributes), visitor_id),
            )
            return changed

        return await self._run(op)

    async def add_page_view(
        self,
        visitor_id: VisitorId,
        url: str,
        title: str = "",
        referrer: str = "",
        *,
        ts: float | None = None,
    ) -> PageView:
        at = now() if ts is None else ts

        def op(db: sqlite3.Connection) -> PageView:
            visitor = _visitor_of(db, visitor_id)
            last = db.execute(
                "SELECT ts FROM page_views WHERE visitor_id = ? ORDER BY id DESC LIMIT 1",
                (visitor_id,),
            ).fetchone()
            visits = visitor.visits
            if visits == 0 or last is None or at - last[0] > VISIT_GAP:
                visits += 1
                db.execute("UPDATE visitors SET visits = ? WHERE id = ?", (visits, visitor_id))
            view = PageView(visitor_id, url, title, referrer, at, visits)
            db.execute(
                "INSERT INTO page_views (visitor_id, url, title, referrer, ts, visit)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (visitor_id, url, title, referrer, at, visits),
            )
            db.execute(
                "DELETE FROM page_views WHERE visitor_id = ? AND id <= ("
                "SELECT id FROM page_views WHERE visitor_id = ? ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (visitor_id, visitor_id, MAX_PAGE_VIEWS),
            )
            return view

        return await self._run(op)

    async def page_views(self, visitor_id: VisitorId, limit: int = 50) -> list[PageView]:
        rows = await self._read_all(
            "SELECT visitor_id, url, title, referrer, ts, visit FROM page_views"
            " WHERE visitor_id = ? ORDER BY id DESC LIMIT ?",
            (visitor_id, max(0, limit)),
        )
        return [PageView(*r) for r in rows]

    # -- conversations ---------------------------------------------------

    @staticmethod
    def _open_of(db: sqlite3.Connection, visitor_id: VisitorId) -> Conversation | None:
        row = db.execute(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = ? AND state != 'closed'",
            (visitor_id,),
        ).fetchone()
        return _conv(row) if row else None

    async def open_conversation(
        self,
        site_id: SiteId,
        visitor_id: VisitorId,
        department: DepartmentId | None = None,
        offline: bool = False,
    ) -> tuple[Conversation, bool]:
        def op(db: sqlite3.Connection) -> tuple[Conversation, bool]:
            existing = self._open_of(db, visitor_id)
            if existing is not None:
                return existing, False
            t = now()
            conv = Conversation(
                id=new_id("c"),
                site_id=site_id,
                visitor_id=visitor_id,
                epoch=new_id("e")[2:14],
                state=ConvState.QUEUED,
                created_at=t,
                queued_at=t,
                department=department,
                offline=offline,
            )
            db.execute(
                f"INSERT INTO conversations ({_CONV_INSERT_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, '[]', 0, ?, NULL)",
                (
                    conv.id,
                    site_id,
                    visitor_id,
                    conv.epoch,
                    conv.state.value,
                    t,
                    t,
                    department,
                    int(offline),
                ),
            )
            return conv, True

        return await self._run(op)

    async def current_conversation(self, visitor_id: VisitorId) -> Conversation | None:
        return await self._read(lambda db: self._open_of(db, visitor_id))

    async def get_conversation(self, conv_id: ConversationId) -> Conversation | None:
        row = await self._read_one(
            f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
        )
        return _conv(row) if row else None

    async def update_conversation(
        self,
        conv_id: ConversationId,
        *,
        state: ConvState | None = None,
        agents: Sequence[AgentId] | None = None,
        department: DepartmentId | Keep | None = KEEP,
        queued_at: float | None = None,
    ) -> Conversation:
        sets: list[str] = []
        args: list[Any] = []
        if state is not None:
            sets.append("state = ?")
            args.append(state.value)
            sets.append("closed_at = ?")
            args.append(now() if state is ConvState.CLOSED else None)
        if agents is not None:
            sets.append("agents = ?")
            args.append(json.dumps(list(agents)))
        if department is not KEEP:
            sets.append("department = ?")
            args.append(department)
        if queued_at is not None:
            sets.append("queued_at = ?")
            args.append(queued_at)

        def op(db: sqlite3.Connection) -> Conversation:
            if sets:
                try:
                    db.execute(
                        f"UPDATE conversations SET {', '.join(sets)} WHERE id = ?",
                        (*args, conv_id),
                    )
                except sqlite3.IntegrityError as exc:
                    raise StoreError("the visitor has another open conversation") from exc
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._run(op)

    async def list_conversations(
        self, site_id: SiteId, states: Sequence[ConvState], limit: int = 500
    ) -> list[Conversation]:
        marks = ", ".join("?" for _ in states)
        rows = await self._read_all(
            f"SELECT {_CONV_COLS} FROM conversations WHERE site_id = ? AND state IN ({marks})"
            " ORDER BY queued_at LIMIT ?",
            (site_id, *(s.value for s in states), limit),
        )
        return [_conv(r) for r in rows]

    async def visitor_conversations(
        self, visitor_id: VisitorId, limit: int = 20
    ) -> list[Conversation]:
        rows = await self._read_all(
            f"SELECT {_CONV_COLS} FROM conversations WHERE visitor_id = ?"
            " ORDER BY created_at DESC LIMIT ?",
            (visitor_id, limit),
        )
        return [_conv(r) for r in rows]

    # -- entries ---------------------------------------------------------

    async def append(
        self,
        conv_id: ConversationId,
        kind: EntryKind,
        author_kind: AuthorKind,
        author_id: str,
        author_name: str,
        body: str,
        cid: str | None = None,
        data: JSON | None = None,
        open_only: bool = False,
        member: str | None = None,
    ) -> tuple[Entry, bool]:
        ts = now()
        data_text = json.dumps(data) if data else None

        def op(db: sqlite3.Connection) -> tuple[Entry, bool]:
            if member is not None:
                found = db.execute(
                    "SELECT site_id, agents FROM conversations WHERE id = ?", (conv_id,)
                ).fetchone()
                if found is None:
                    raise NotFound(f"conversation {conv_id}")
                if member not in json.loads(found[1]):
                    raise NotMember(f"{member} is not in conversation {conv_id}", found[0])
            if cid is not None:
                row = db.execute(
                    f"SELECT {_ENTRY_COLS} FROM entries"
                    " WHERE conv_id = ? AND author_id = ? AND cid = ?",
                    (conv_id, author_id, cid),
                ).fetchone()
                if row is not None:
                    return _entry(row), True
            row = db.execute(
                "UPDATE conversations SET last_offset = last_offset + 1"
                " WHERE id = ? AND (? = 0 OR state != 'closed') RETURNING last_offset",
                (conv_id, int(open_only)),
            ).fetchone()
            if row is None:
                if (
                    open_only
                    and db.execute(
                        "SELECT 1 FROM conversations WHERE id = ?", (conv_id,)
                    ).fetchone()
                ):
                    raise Closed(f"conversation {conv_id} is closed")
                raise NotFound(f"conversation {conv_id}")
            entry = Entry(
                conv_id,
                row[0],
                kind,
                author_kind,
                author_id,
                author_name,
                body,
                ts,
                cid,
                data or {},
            )
            db.execute(
                f"INSERT INTO entries ({_ENTRY_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conv_id,
                    entry.offset,
                    kind.value,
                    author_kind.value,
                    author_id,
                    author_name,
                    body,
                    ts,
                    cid,
                    data_text,
                ),
            )
            return entry, False

        return await self._run(op)

    async def entries(
        self,
        conv_id: ConversationId,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        include_notes: bool = True,
    ) -> list[Entry]:
        notes = "" if include_notes else " AND kind != 'note'"
        if after is not None:
            rows = await self._read_all(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE conv_id = ? AND offset > ?{notes}"
                " ORDER BY offset LIMIT ?",
                (conv_id, after, limit),
            )
        else:
            upper = before if before is not None else 2**62
            rows = await self._read_all(
                f"SELECT {_ENTRY_COLS} FROM entries WHERE conv_id = ? AND offset < ?{notes}"
                " ORDER BY offset DESC LIMIT ?",
                (conv_id, upper, limit),
            )
            rows.reverse()
        return [_entry(r) for r in rows]

    async def set_read(self, conv_id: ConversationId, reader: str, offset: int) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO reads (conv_id, reader, offset) VALUES (?, ?, ?)"
                " ON CONFLICT (conv_id, reader) DO UPDATE SET offset = max(offset, excluded.offset)"
                " RETURNING offset",
                (conv_id, reader, offset),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def set_tags(
        self,
        conv_id: ConversationId,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        def op(db: sqlite3.Connection) -> Conversation:
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no conversation {conv_id}")
            conv = _conv(row)
            tags = tuple(sorted((set(conv.tags) | set(add)) - set(remove)))
            db.execute(
                "UPDATE conversations SET tags = ? WHERE id = ?", (json.dumps(tags), conv_id)
            )
            return replace(conv, tags=tags)

        return await self._run(op)

    # -- site documents ----------------------------------------------------

    async def put_doc(self, site_id: SiteId, kind: str, doc_id: str, data: JSON) -> Doc:
        stamp = now()
        body = json.dumps(data)

        def op(db: sqlite3.Connection) -> Doc:
            row = db.execute(
                "INSERT INTO docs (site_id, kind, id, data, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, kind, id) DO UPDATE"
                " SET data = excluded.data, updated_at = excluded.updated_at"
                " RETURNING created_at",
                (site_id, kind, doc_id, body, stamp, stamp),
            ).fetchone()
            return Doc(site_id, kind, doc_id, json.loads(body), row[0], stamp)

        return await self._run(op)

    async def get_doc(self, site_id: SiteId, kind: str, doc_id: str) -> Doc | None:
        row = await self._one(
            "SELECT site_id, kind, id, data, created_at, updated_at FROM docs"
            " WHERE site_id = ? AND kind = ? AND id = ?",
            (site_id, kind, doc_id),
        )
        return _doc(row) if row else None

    async def list_docs(self, site_id: SiteId, kind: str) -> list[Doc]:
        rows = await self._all(
            "SELECT site_id, kind, id, data, created_at, updated_at FROM docs"
            " WHERE site_id = ? AND kind = ? ORDER BY created_at, id",
            (site_id, kind),
        )
        return [_doc(r) for r in rows]

    async def delete_doc(self, site_id: SiteId, kind: str, doc_id: str) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "DELETE FROM docs WHERE site_id = ? AND kind = ? AND id = ?",
                (site_id, kind, doc_id),
            )
            return cur.rowcount > 0

        return await self._run(op)

    # -- widget features: ratings, attachments, events, identity ---------
    # -- proactive triggers: firings and counters --------------------------------

    async def claim_firing(
        self,
        visitor_id: VisitorId,
        trigger_id: str,
        *,
        visit: int,
        frequency: str,
        gap: float,
        now: float,
    ) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            row = db.execute(
                "SELECT visit, at FROM trigger_firings WHERE visitor_id = ? AND trigger_id = ?",
                (visitor_id, trigger_id),
            ).fetchone()
            if row is not None and not _may_fire(frequency, row[0], row[1], visit, gap, now):
                return False
            db.execute(
                "INSERT OR REPLACE INTO trigger_firings (visitor_id, trigger_id, visit, at,"
                " followed) VALUES (?, ?, ?, ?, 0)",
                (visitor_id, trigger_id, visit, now),
            )
            return True

        return await self._run(op)

    async def trigger_firings(self, visitor_id: VisitorId) -> dict[str, Firing]:
        rows = await self._all(
            "SELECT trigger_id, visit, at, followed FROM trigger_firings WHERE visitor_id = ?",
            (visitor_id,),
        )
        return {r[0]: Firing(int(r[1]), float(r[2]), bool(r[3])) for r in rows}

    async def claim_follow(self, visitor_id: VisitorId, trigger_id: str, fired_at: float) -> bool:
        def op(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE trigger_firings SET followed = 1 WHERE visitor_id = ? AND trigger_id = ?"
                " AND at = ? AND followed = 0",
                (visitor_id, trigger_id, fired_at),
            )
            return cur.rowcount > 0

        return await self._run(op)

    async def add_counter(self, site_id: SiteId, group: str, name: str, by: int = 1) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO counters (site_id, grp, name, value) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site_id, grp, name) DO UPDATE SET value = value + excluded.value"
                " RETURNING value",
                (site_id, group, name, by),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def counters(self, site_id: SiteId, group: str) -> dict[str, int]:
        rows = await self._all(
            "SELECT name, value FROM counters WHERE site_id = ? AND grp = ?", (site_id, group)
        )
        return {r[0]: int(r[1]) for r in rows}

    async def rate_conversation(
        self, conv_id: ConversationId, rating: str, comment: str = ""
    ) -> Conversation:
        at = now()

        def op(db: sqlite3.Connection) -> Conversation:
            db.execute(
                "UPDATE conversations SET rating = ?, rating_comment = ?, rated_at = ?"
                " WHERE id = ?",
                (rating, comment, at, conv_id),
            )
            row = db.execute(
                f"SELECT {_CONV_COLS} FROM conversations WHERE id = ?", (conv_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"conversation {conv_id}")
            return _conv(row)

        return await self._run(op)

    async def create_attachment(
        self, site_id: SiteId, uploader: str, name: str, content_type: str, size: int
    ) -> Attachment:
        att = Attachment(new_id("f"), site_id, uploader, name, content_type, size, now())

        def op(db: sqlite3.Connection) -> Attachment:
            db.execute(
                f"INSERT INTO attachments ({_ATTACHMENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (att.id, site_id, uploader, name, content_type, size, att.created_at),
            )
            _add_bytes(db, site_id, unposted=size, total=size)
            return att

        return await self._run(op)

    async def get_attachment(self, attachment_id: str) -> Attachment | None:
        row = await self._one(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = ?", (attachment_id,)
        )
        return Attachment(*row) if row else None

    async def bind_attachment(self, attachment_id: str, conv_id: ConversationId) -> Attachment:
        def op(db: sqlite3.Connection) -> Attachment:
            bound = db.execute(
                "UPDATE attachments SET conv_id = ? WHERE id = ? AND conv_id IS NULL",
                (conv_id, attachment_id),
            ).rowcount
            row = db.execute(
                f"SELECT {_ATTACHMENT_COLS} FROM attachments WHERE id = ?", (attachment_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"attachment {attachment_id}")
            att = Attachment(*row)
            if bound:
                _add_bytes(db, att.site_id, unposted=-att.size, total=0)
            return att

        return await self._run(op)

    async def attachment_bytes(self, site_id: SiteId) -> tuple[int, int]:
        row = await self._read_one(
            "SELECT COALESCE(SUM(CASE WHEN name = 'unposted_bytes' THEN value END), 0),"
            " COALESCE(SUM(CASE WHEN name = 'total_bytes' THEN value END), 0)"
            " FROM counters WHERE site_id = ? AND grp = ?",
            (site_id, ATTACHMENT_BYTES),
        )
        return int(row[0]), int(row[1])

    async def unposted_attachments(self, before: float, limit: int = 100) -> list[Attachment]:
        rows = await self._read_all(
            f"SELECT {_ATTACHMENT_COLS} FROM attachments"
            " WHERE conv_id IS NULL AND created_at < ? ORDER BY created_at LIMIT ?",
            (before, limit),
        )
        return [Attachment(*r) for r in rows]

    async def delete_unposted_attachment(self, attachment_id: str) -> Attachment | None:
        def op(db: sqlite3.Connection) -> Attachment | None:
            row = db.execute(
                f"DELETE FROM attachments WHERE id = ? AND conv_id IS NULL"
                f" RETURNING {_ATTACHMENT_COLS}",
                (attachment_id,),
            ).fetchone()
            if row is None:
                return None
            att = Attachment(*row)
            _add_bytes(db, att.site_id, unposted=-att.size, total=-att.size)
            return att

        return await self._run(op)

    async def add_visitor_event(
        self, visitor_id: VisitorId, name: str, props: JSON, *, ts: float | None = None
    ) -> VisitorEvent:
        event = VisitorEvent(visitor_id, name, props, now() if ts is None else ts)

        def op(db: sqlite3.Connection) -> VisitorEvent:
            _visitor_of(db, visitor_id)
            db.execute(
                "INSERT INTO visitor_events (visitor_id, name, props, ts) VALUES (?, ?, ?, ?)",
                (visitor_id, name, json.dumps(props), event.ts),
            )
            db.execute(
                "DELETE FROM visitor_events WHERE visitor_id = ? AND id <= ("
                "SELECT id FROM visitor_events WHERE visitor_id = ? ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (visitor_id, visitor_id, MAX_VISITOR_EVENTS),
            )
            return event

        return await self._run(op)

    async def visitor_events(self, visitor_id: VisitorId, limit: int = 50) -> list[VisitorEvent]:
        rows = await self._all(
            "SELECT visitor_id, name, props, ts FROM visitor_events"
            " WHERE visitor_id = ? ORDER BY id DESC LIMIT ?",
            (visitor_id, max(0, limit)),
        )
        return [VisitorEvent(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    async def identity_secret(self, site_id: SiteId, *, rotate: bool = False) -> str:
        fresh = secrets.token_hex(32)

        def op(db: sqlite3.Connection) -> str:
            db.execute(
                "UPDATE sites SET identity_secret = ? WHERE id = ? AND (? OR identity_secret = '')",
                (fresh, site_id, int(rotate)),
            )
            row = db.execute(
                "SELECT identity_secret FROM sites WHERE id = ?", (site_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"site {site_id}")
            return str(row[0])

        return await self._run(op)

    async def set_identity(self, visitor_id: VisitorId, user_id: str, verified: bool) -> Visitor:
        def op(db: sqlite3.Connection) -> Visitor:
            visitor = _visitor_of(db, visitor_id)
            db.execute(
                "UPDATE visitors SET user_id = ?, verified = ? WHERE id = ?",
                (user_id, int(verified), visitor_id),
            )
            if verified:
                db.execute(
                    "INSERT OR IGNORE INTO identities (site_id, user_id, visitor_id)"
                    " VALUES (?, ?, ?)",
                    (visitor.site_id, user_id, visitor_id),
                )
            return replace(visitor, user_id=user_id, verified=verified)

        return await self._run(op)

    async def visitor_by_identity(self, site_id: SiteId, user_id: str) -> Visitor | None:
        row = await self._one(
            f"SELECT {_VISITOR_COLS} FROM visitors WHERE id = ("
            "SELECT visitor_id FROM identities WHERE site_id = ? AND user_id = ?)",
            (site_id, user_id),
        )
        return None if row is None else _visitor(row)

    # -- recordings (recordings/) --------------------------------------------

    async def claim_recording(
        self,
        rec_id: RecordingId,
        site_id: SiteId,
        visitor_id: VisitorId,
        blob: str,
        skew_ms: float,
    ) -> Recording:
        t = now()
        fresh = Recording(rec_id, site_id, visitor_id, blob, t, skew_ms, started=t, ended=t)

        def op(db: sqlite3.Connection) -> Recording:
            marks = ", ".join("?" for _ in range(19))
            db.execute(
                f"INSERT OR IGNORE INTO recordings ({_REC_COLS}) VALUES ({marks})",
                _rec_values(fresh),
            )
            rec = _recording_of(db, rec_id)
            assert rec is not None
            return rec

        return await self._run(op)

    async def get_recording(self, rec_id: RecordingId) -> Recording | None:
        return await self._run(lambda db: _recording_of(db, rec_id))

    async def add_recording_batch(
        self, rec_id: RecordingId, batch: RecordingBatch
    ) -> tuple[Recording, bool]:
        marks = [
            (m.kind, m.ts, m.data.get("url") if m.kind == "page" else None, json.dumps(m.data))
            for m in batch.marks
        ]

        def op(db: sqlite3.Connection) -> tuple[Recording, bool]:
            rec = _recording_of(db, rec_id)
            if rec is None:
                raise NotFound(f"recording {rec_id}")
            if batch.seq <= rec.last_seq:
                return rec, True
            new = apply_batch(rec, batch)
            db.execute(_REC_UPDATE, (*_rec_values(new)[1:], rec_id))
            if marks:
                db.executemany(
                    "INSERT INTO recording_marks (rec_id, n, kind, ts, url, data)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(rec_id, rec.marks + i, *m) for i, m in enumerate(marks)],
                )
            return new, False

        return await self._run(op)

    async def recording_marks(
        self, rec_id: RecordingId, kinds: Sequence[str] | None = None
    ) -> list[RecordingMark]:
        sql = "SELECT kind, ts, data FROM recording_marks WHERE rec_id = ?"
        args: list[Any] = [rec_id]
        if kinds is not None:
            if not kinds:
                return []
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            args.extend(kinds)
        rows = await self._all(sql + " ORDER BY n", tuple(args))
        return [RecordingMark(r[0], r[1], json.loads(r[2])) for r in rows]

    async def list_recordings(
        self,
        site_id: SiteId,
        *,
        since: float | None = None,
        until: float | None = None,
        url: str | None = None,
        min_duration: float | None = None,
        had_chat: bool | None = None,
        visitor_id: VisitorId | None = None,
        before: tuple[float, RecordingId] | None = None,
        limit: int = 50,
    ) -> list[Recording]:
        where = ["site_id = ?", "events > 0"]
        args: list[Any] = [site_id]
        if since is not None:
            where.append("started >= ?")
            args.append(since)
        if until is not None:
            where.append("started < ?")
            args.append(until)
        if url:
            where.append(
                "EXISTS (SELECT 1 FROM recording_marks m WHERE m.rec_id = recordings.id"
                " AND m.kind = 'page' AND instr(m.url, ?) > 0)"
            )
            args.append(url)
        if min_duration is not None:
            where.append("last_ts - first_ts >= ?")
            args.append(min_duration * 1000.0)
        if had_chat is not None:
            where.append("conv_id IS NOT NULL" if had_chat else "conv_id IS NULL")
        if visitor_id is not None:
            where.append("visitor_id = ?")
            args.append(visitor_id)
        if before is not None:
            where.append("(started < ? OR (started = ? AND id < ?))")
            args.extend((before[0], before[0], before[1]))
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE {' AND '.join(where)}"
            " ORDER BY started DESC, id DESC LIMIT ?",
            (*args, max(0, limit)),
        )
        return [_recording(r) for r in rows]

    async def expired_recordings(
        self, site_id: SiteId, ended_before: float, limit: int = 500
    ) -> list[Recording]:
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE site_id = ? AND ended < ?"
            " ORDER BY ended LIMIT ?",
            (site_id, ended_before, max(0, limit)),
        )
        return [_recording(r) for r in rows]

    async def visitor_recordings(self, visitor_id: VisitorId) -> list[Recording]:
        rows = await self._all(
            f"SELECT {_REC_COLS} FROM recordings WHERE visitor_id = ?"
            " ORDER BY started DESC, id DESC",
            (visitor_id,),
        )
        return [_recording(r) for r in rows]

    async def delete_recordings(self, rec_ids: Sequence[RecordingId]) -> int:
        ids = list(rec_ids)

        def op(db: sqlite3.Connection) -> int:
            count = 0
            for rec_id in ids:
                db.execute("DELETE FROM recording_marks WHERE rec_id = ?", (rec_id,))
                count += db.execute("DELETE FROM recordings WHERE id = ?", (rec_id,)).rowcount
            return count

        return await self._run(op)

    # -- agent sessions: revocation ------------------------------------------

    async def session_generation(self, agent_id: AgentId) -> int:
        row = await self._read_one(
            "SELECT generation FROM session_generations WHERE agent_id = ?", (agent_id,)
        )
        return 0 if row is None else int(row[0])

    async def end_sessions(self, agent_id: AgentId) -> int:
        def op(db: sqlite3.Connection) -> int:
            row = db.execute(
                "INSERT INTO session_generations (agent_id, generation) VALUES (?, 1)"
                " ON CONFLICT (agent_id) DO UPDATE SET generation = generation + 1"
                " RETURNING generation",
                (agent_id,),
            ).fetchone()
            return int(row[0])

        return await self._run(op)

    async def revoke_session(self, session_id: str, until: float) -> None:
        def op(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM revoked_sessions WHERE until <= ?", (now(),))
            db.execute(
                "INSERT INTO revoked_sessions (id, until) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
                (session_id, until),
            )

        await self._run(op)

    async def session_revoked(self, session_id: str) -> bool:
        row = await self._read_one(
            "SELECT 1 FROM revoked_sessions WHERE id = ? AND until > ?", (session_id, now())
        )
        return row is not None

    # -- login throttle and session re-checks --------------------------------

    async def throttle_wait(
        self, keys: Sequence[str], limit: int, window: float, now: float
    ) -> float:
        wanted = list(keys)
        if not wanted:
            return 0.0
        marks = ", ".join("?" * len(wanted))
        rows = await self._read_all(
            f"SELECT stamps FROM throttle WHERE key IN ({marks})", tuple(wanted)
        )
        return max(
            (throttle_delay((t for t, _ in _slots(row[0])), limit, window, now) for row in rows),
            default=0.0,
        )

    async def throttle_reserve(
        self, keys: Sequence[str], limit: int, window: float, now: float, slot: str
    ) -> float:
        wanted = list(dict.fromkeys(keys))

        # One write transaction (BEGIN IMMEDIATE holds the database's write lock),
        # so the check and the records are one step for every connection and process.
        def op(db: sqlite3.Connection) -> float:
            db.execute("DELETE FROM throttle WHERE until <= ?", (now,))
            current: dict[str, list[tuple[float, str]]] = {}
            for key in wanted:
                row = db.execute("SELECT stamps FROM throttle WHERE key = ?", (key,)).fetchone()
                current[key] = [s for s in _slots(row[0]) if now - s[0] < window] if row else []
            wait = max(
                (throttle_delay((t for t, _ in s), limit, window, now) for s in current.values()),
                default=0.0,
            )
            if wait > 0:
                return wait
            for key, slots in current.items():
                slots.append((now, slot))
                db.execute(
                    "INSERT INTO throttle (key, stamps, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET stamps = excluded.stamps,"
                    " until = excluded.until",
                    (key, json.dumps(slots[-limit:]), max(t for t, _ in slots) + window),
                )
            return 0.0

        return await self._run(op)

    async def throttle_release(self, keys: Sequence[str], slot: str) -> None:
        wanted = list(dict.fromkeys(keys))

        def op(db: sqlite3.Connection) -> None:
            for key in wanted:
                row = db.execute("SELECT stamps FROM throttle WHERE key = ?", (key,)).fetchone()
                if row is None:
                    continue
                kept = [s for s in _slots(row[0]) if s[1] != slot]
                if kept:
                    db.execute(
                        "UPDATE throttle SET stamps = ? WHERE key = ?", (json.dumps(kept), key)
                    )
                else:
                    db.execute("DELETE FROM throttle WHERE key = ?", (key,))

        if wanted:
            await self._run(op)

    async def throttle_clear(self, keys: Sequence[str]) -> None:
        wanted = list(keys)
        if not wanted:
            return
        marks = ", ".join("?" * len(wanted))
        await self._run(
            lambda db: db.execute(f"DELETE FROM throttle WHERE key IN ({marks})", tuple(wanted))
        )

    async def session_states(
        self, agent_ids: Sequence[AgentId], session_ids: Sequence[str]
    ) -> tuple[dict[AgentId, int], set[str]]:
        agents, sessions = list(dict.fromkeys(agent_ids)), list(dict.fromkeys(session_ids))
        at = now()

        def op(db: sqlite3.Connection) -> tuple[dict[AgentId, int], set[str]]:
            generations = dict.fromkeys(agents, 0)
            revoked: set[str] = set()
            for chunk in _chunks(agents):
                marks = ", ".join("?" * len(chunk))
                for agent_id, generation in db.execute(
                    "SELECT agent_id, generation FROM session_generations"
                    f" WHERE agent_id IN ({marks})",
                    chunk,
                ):
                    generations[agent_id] = int(generation)
            for chunk in _chunks(sessions):
                marks = ", ".join("?" * len(chunk))
                revoked.update(
                    row[0]
                    for row in db.execute(
                        f"SELECT id FROM revoked_sessions WHERE id IN ({marks}) AND until > ?",
                        (*chunk, at),
                    )
                )
            return generations, revoked

        return await self._read(op)

    # -- read markers: restored on (re)join ----------------------------------

    async def read_markers(self, conv_id: ConversationId) -> dict[str, int]:
        rows = await self._read_all(
            "SELECT reader, offset FROM reads WHERE conv_id = ?", (conv_id,)
        )
        return {str(reader): int(offset) for reader, offset in rows}

    # -- operations: readiness ----------------------------------------------------

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone())


def _chunks(items: list[str], size: int = 500) -> list[tuple[str, ...]]:
    """``items`` in tuples of at most ``size`` (SQL parameters per statement)."""
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def _recording(row: sqlite3.Row) -> Recording:
    return Recording(*row)


def _rec_values(rec: Recording) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.site_id,
        rec.visitor_id,
        rec.blob,
        rec.created_at,
        rec.skew_ms,
        rec.started,
        rec.ended,
        rec.first_ts,
        rec.last_ts,
        rec.last_seq,
        rec.events,
        rec.bytes,
        rec.raw_bytes,
        rec.clicks,
        rec.inputs,
        rec.pages,
        rec.marks,
        rec.conv_id,
    )


def _recording_of(db: sqlite3.Connection, rec_id: RecordingId) -> Recording | None:
    row = db.execute(f"SELECT {_REC_COLS} FROM recordings WHERE id = ?", (rec_id,)).fetchone()
    return None if row is None else _recording(row)


def _slots(stamps: str) -> list[tuple[float, str]]:
    """The (Unix time, slot) records of a throttle row; a bare time has slot ``""``."""
    return [
        (float(s), "") if isinstance(s, int | float) else (float(s[0]), str(s[1]))
        for s in json.loads(stamps)
    ]


def _run_reads(db: sqlite3.Connection, batch: list[Job]) -> Results:
    results: Results = []
    for op, fut in batch:
        try:
            results.append((fut, op(db), None))
        except Exception as exc:
            results.append((fut, None, exc))
    return results


class _Lane:
    """A thread with its own SQLite connection, running operations in batches.

    ``submit`` collects the operations of one event-loop iteration and hands
    them to the thread together (one queue put, one wake-up); the thread runs
    them with ``run`` in chunks of ``MAX_BATCH`` and resolves each chunk's
    futures with one ``call_soon_threadsafe``.
    """

    def __init__(
        self,
        name: str,
        connect: Callable[[], sqlite3.Connection],
        run: Callable[[sqlite3.Connection, list[Job]], Results],
    ) -> None:
        self.name = name
        self._connect = connect
        self._run = run
        self._queue: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._pending: list[Job] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name=self.name, daemon=True
        )
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._thread is None:
            return
        self._kick()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def submit(self, op: Op) -> asyncio.Future[Any]:
        assert self._loop is not None
        fut = self._loop.create_future()
        self._pending.append((op, fut))
        if len(self._pending) == 1:
            self._loop.call_soon(self._kick)
        return fut

    def _kick(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queue.put(batch)

    def _main(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        loop = self._loop
        # Woken by a submission, this thread would preempt the event loop's
        # thread while it holds the GIL when both share a core, only to wait
        # for the GIL: two context switches per batch.  SCHED_BATCH keeps its
        # fair share of the CPU but does not preempt on wake-up (Linux).
        if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_BATCH"):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        try:
            db = self._connect()
        except Exception as exc:  # report the failure to start()
            loop.call_soon_threadsafe(ready.set_exception, exc)
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        stop = False
        while not stop:
            jobs = self._queue.get()
            if jobs is None:
                break
            while len(jobs) < MAX_BATCH:  # more may have arrived meanwhile
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.extend(more)
            for i in range(0, len(jobs), MAX_BATCH):
                loop.call_soon_threadsafe(_resolve, self._run(db, jobs[i : i + MAX_BATCH]))
        db.close()


def _resolve(results: Results) -> None:
    for fut, value, exc in results:
        if fut.done():  # the caller was cancelled; the write still happened
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _doc(row: sqlite3.Row) -> Doc:
    return Doc(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


def _may_fire(
    frequency: str, visit: int, at: float, now_visit: int, gap: float, now: float
) -> bool:
    """Whether a trigger last fired in ``visit`` at ``at`` may fire again (``claim_firing``)."""
    if frequency == "visit":
        return visit < now_visit
    if frequency == "always":
        return at + gap <= now
    return False
