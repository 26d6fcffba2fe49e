"""The PostgreSQL schema as numbered migrations, recorded in the table ``schema_version``.

``MIGRATIONS`` is the ordered list of steps; step ``n`` brings a database
(its schema: the first of the connection's ``search_path``) from version
``n - 1`` to ``n``.  ``migrate`` runs exactly the steps it lacks, each in one
transaction together with its row in ``schema_version`` (version, name,
applied_at): a step is applied whole or not at all.  Every step holds a
transaction-scoped advisory lock, so several processes starting at once on
one database apply each step once (the others wait, then find it applied).
A database whose version is higher than the last step is refused with
``StoreError``: a newer chatserver wrote it, and this one would misread it.

The layout follows the SQLite one (``migrations_sqlite``) table for table, so
the row conversions are shared (``store/sqlite/rows.py``): JSON documents are
``text`` holding JSON, times are Unix seconds in ``double precision``.  What
PostgreSQL adds is said where it is declared: the partial unique index that
keeps one open conversation per visitor, the unique index on ``(conv_id,
author_id, cid)`` that makes ``append`` idempotent, the case-insensitive
unique index on agents' emails.  ``"offset"`` is a reserved word here and is
always quoted.

To change the schema, append a step (never edit a released one) and a line
in docs/scaling.md ("PostgreSQL").
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import StoreError

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the migrations (any constant; "chatmigr" in ASCII)
LOCK = 0x636861746D696772

Connection = Any  # asyncpg.Connection (asyncpg ships no type hints)


@dataclass(frozen=True, slots=True)
class Migration:
    """Step ``version``: ``apply`` brings a database from ``version - 1`` to ``version``."""

    version: int
    name: str
    apply: Callable[[Connection], Awaitable[None]]


SCHEMA = (
    """CREATE TABLE sites (
    id text PRIMARY KEY, key text NOT NULL UNIQUE, name text NOT NULL,
    origins text NOT NULL, settings text NOT NULL, departments text NOT NULL,
    created_at double precision NOT NULL, identity_secret text NOT NULL DEFAULT '')""",
    """CREATE TABLE agents (
    id text PRIMARY KEY, site_id text NOT NULL, email text NOT NULL,
    name text NOT NULL, password_hash text NOT NULL, role text NOT NULL,
    capacity integer NOT NULL, departments text NOT NULL, disabled boolean NOT NULL,
    created_at double precision NOT NULL)""",
    # emails are unique case-insensitively (AgentStore)
    "CREATE UNIQUE INDEX agents_email ON agents (lower(email))",
    "CREATE INDEX agents_site ON agents (site_id, created_at)",
    """CREATE TABLE visitors (
    id text PRIMARY KEY, site_id text NOT NULL, created_at double precision NOT NULL,
    name text NOT NULL DEFAULT '', email text NOT NULL DEFAULT '',
    attributes text NOT NULL DEFAULT '{}', last_agent_id text,
    visits integer NOT NULL DEFAULT 0, user_id text NOT NULL DEFAULT '',
    verified boolean NOT NULL DEFAULT false)""",
    """CREATE TABLE page_views (
    id bigserial PRIMARY KEY, visitor_id text NOT NULL, url text NOT NULL,
    title text NOT NULL, referrer text NOT NULL, ts double precision NOT NULL,
    visit integer NOT NULL)""",
    "CREATE INDEX page_views_visitor ON page_views (visitor_id, id)",
    """CREATE TABLE conversations (
    id text PRIMARY KEY, site_id text NOT NULL, visitor_id text NOT NULL,
    epoch text NOT NULL, state text NOT NULL, created_at double precision NOT NULL,
    queued_at double precision NOT NULL, department text, agents text NOT NULL,
    last_offset bigint NOT NULL, offline boolean NOT NULL, closed_at double precision,
    rating text, rating_comment text NOT NULL DEFAULT '', rated_at double precision,
    tags text NOT NULL DEFAULT '[]')""",
    "CREATE INDEX conv_visitor ON conversations (visitor_id, created_at)",
    "CREATE INDEX conv_site_state ON conversations (site_id, state, queued_at)",
    # one open (queued or active) conversation per visitor
    "CREATE UNIQUE INDEX conv_one_open ON conversations (visitor_id) WHERE state <> 'closed'",
    """CREATE TABLE entries (
    conv_id text NOT NULL, "offset" bigint NOT NULL, kind text NOT NULL,
    author_kind text NOT NULL, author_id text NOT NULL, author_name text NOT NULL,
    body text NOT NULL, ts double precision NOT NULL, cid text, data text,
    PRIMARY KEY (conv_id, "offset"))""",
    # append's idempotency: a cid is used once per author and conversation
    """CREATE UNIQUE INDEX entries_cid ON entries (conv_id, author_id, cid)
    WHERE cid IS NOT NULL""",
    """CREATE TABLE reads (
    conv_id text NOT NULL, reader text NOT NULL, "offset" bigint NOT NULL,
    PRIMARY KEY (conv_id, reader))""",
    """CREATE TABLE docs (
    site_id text NOT NULL, kind text NOT NULL, id text NOT NULL, data text NOT NULL,
    created_at double precision NOT NULL, updated_at double precision NOT NULL,
    PRIMARY KEY (site_id, kind, id))""",
    """CREATE TABLE trigger_firings (
    visitor_id text NOT NULL, trigger_id text NOT NULL, visit integer NOT NULL,
    at double precision NOT NULL, followed boolean NOT NULL DEFAULT false,
    PRIMARY KEY (visitor_id, trigger_id))""",
    """CREATE TABLE counters (
    site_id text NOT NULL, grp text NOT NULL, name text NOT NULL, value bigint NOT NULL,
    PRIMARY KEY (site_id, grp, name))""",
    """CREATE TABLE attachments (
    id text PRIMARY KEY, site_id text NOT NULL, uploader text NOT NULL, name text NOT NULL,
    content_type text NOT NULL, size bigint NOT NULL, created_at double precision NOT NULL,
    conv_id text)""",
    "CREATE INDEX attachments_unposted ON attachments (created_at) WHERE conv_id IS NULL",
    """CREATE TABLE visitor_events (
    id bigserial PRIMARY KEY, visitor_id text NOT NULL, name text NOT NULL,
    props text NOT NULL, ts double precision NOT NULL)""",
    "CREATE INDEX visitor_events_visitor ON visitor_events (visitor_id, id)",
    """CREATE TABLE identities (
    site_id text NOT NULL, user_id text NOT NULL, visitor_id text NOT NULL,
    PRIMARY KEY (site_id, user_id))""",
    """CREATE TABLE session_generations (
    agent_id text PRIMARY KEY, generation bigint NOT NULL)""",
    """CREATE TABLE revoked_sessions (
    id text PRIMARY KEY, until double precision NOT NULL)""",
    # login throttle: a JSON list of [Unix time, slot], kept until ``until``
    """CREATE TABLE throttle (
    key text PRIMARY KEY, stamps text NOT NULL, until double precision NOT NULL)""",
    "CREATE INDEX throttle_until ON throttle (until)",
    # the server secret that signs tokens, shared by every process (security.py)
    """CREATE TABLE server_secret (
    id integer PRIMARY KEY CHECK (id = 1), secret text NOT NULL)""",
    # session recordings' index (recordings/index/postgres.py)
    """CREATE TABLE recordings (
    id text PRIMARY KEY, site_id text NOT NULL, visitor_id text NOT NULL, blob text NOT NULL,
    created_at double precision NOT NULL, skew_ms double precision NOT NULL,
    started double precision NOT NULL, ended double precision NOT NULL,
    first_ts double precision NOT NULL, last_ts double precision NOT NULL,
    last_seq bigint NOT NULL, events bigint NOT NULL, bytes bigint NOT NULL,
    raw_bytes bigint NOT NULL, clicks bigint NOT NULL, inputs bigint NOT NULL,
    pages bigint NOT NULL, marks bigint NOT NULL, conv_id text)""",
    "CREATE INDEX recordings_site ON recordings (site_id, started, id)",
    "CREATE INDEX recordings_ended ON recordings (site_id, ended)",
    "CREATE INDEX recordings_visitor ON recordings (visitor_id)",
    # append in one round trip (store/postgres/conversations.py): lock the
    # conversation's row, check member, cid and state, number and insert the entry.
    # Errors are SQLSTATEs of our own: CH404 no such conversation, CH403 not a
    # member (DETAIL: the conversation's site), CH409 closed.
    """CREATE FUNCTION chat_append(
    p_conv text, p_kind text, p_author_kind text, p_author_id text, p_author_name text,
    p_body text, p_ts double precision, p_cid text, p_data text, p_open_only boolean,
    p_member text)
RETURNS TABLE (e_duplicate boolean, e_offset bigint, e_kind text, e_author_kind text,
    e_author_id text, e_author_name text, e_body text, e_ts double precision, e_cid text,
    e_data text)
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    n bigint;
BEGIN
    SELECT site_id, agents, state INTO c FROM conversations WHERE id = p_conv FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation %', p_conv USING ERRCODE = 'CH404';
    END IF;
    IF p_member IS NOT NULL AND NOT (c.agents::jsonb ? p_member) THEN
        RAISE EXCEPTION '% is not in conversation %', p_member, p_conv
            USING ERRCODE = 'CH403', DETAIL = c.site_id;
    END IF;
    IF p_cid IS NOT NULL THEN
        RETURN QUERY SELECT true, e."offset", e.kind, e.author_kind, e.author_id,
            e.author_name, e.body, e.ts, e.cid, e.data FROM entries e
            WHERE e.conv_id = p_conv AND e.author_id = p_author_id AND e.cid = p_cid;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF p_open_only AND c.state = 'closed' THEN
        RAISE EXCEPTION 'conversation % is closed', p_conv USING ERRCODE = 'CH409';
    END IF;
    UPDATE conversations SET last_offset = last_offset + 1 WHERE id = p_conv
        RETURNING last_offset INTO n;
    INSERT INTO entries (conv_id, "offset", kind, author_kind, author_id, author_name, body,
        ts, cid, data)
        VALUES (p_conv, n, p_kind, p_author_kind, p_author_id, p_author_name, p_body, p_ts,
        p_cid, p_data);
    RETURN QUERY SELECT false, n, p_kind, p_author_kind, p_author_id, p_author_name, p_body,
        p_ts, p_cid, p_data;
END
$fn$""",
    """CREATE TABLE recording_marks (
    rec_id text NOT NULL, n bigint NOT NULL, kind text NOT NULL, ts double precision NOT NULL,
    url text, data text NOT NULL,
    PRIMARY KEY (rec_id, n))""",
)


async def _schema(db: Connection) -> None:
    """Step 1: every table and index (one round trip: a script without parameters)."""
    await db.execute(";\n".join(SCHEMA))


async def _recording_chunks(db: Connection) -> None:
    """Step 2: recordings as immutable chunk objects (recordings/chunks.py), one row each."""
    await db.execute(
        """CREATE TABLE recording_chunks (
    rec_id text NOT NULL, key text NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL,
    bytes bigint NOT NULL, first_ts double precision NOT NULL, last_ts double precision NOT NULL,
    PRIMARY KEY (rec_id, key))"""
    )


async def _report_facts(db: Connection) -> None:
    """Step 3: one facts row per closed conversation (chatserver/reports/facts.py) and
    its rollup per site, local day and department (chatserver/reports/rollup.py)."""
    await db.execute(
        """CREATE TABLE report_facts (
    conv_id text PRIMARY KEY, site_id text NOT NULL, visitor_id text NOT NULL,
    started double precision NOT NULL, closed double precision, department text,
    agents text NOT NULL, tags text NOT NULL, offline integer NOT NULL, served integer NOT NULL,
    in_hours integer NOT NULL, local_day text NOT NULL, local_slot integer NOT NULL,
    first_response double precision, queue_wait double precision, handling double precision,
    transfers integer NOT NULL, msgs_visitor integer NOT NULL, msgs_agent integer NOT NULL,
    response_times text NOT NULL, rating text, comment text NOT NULL, trigger_id text,
    spans text NOT NULL, replies text NOT NULL, first_replier text);
CREATE INDEX report_facts_site ON report_facts (site_id, started);
CREATE INDEX report_facts_day ON report_facts (site_id, local_day);
CREATE TABLE report_rollups (
    site_id text NOT NULL, local_day text NOT NULL, department text NOT NULL,
    n integer NOT NULL, data bytea NOT NULL, PRIMARY KEY (site_id, local_day, department))"""
    )


def _fold_tables() -> tuple[str, str]:
    """Accented Latin letters (U+00C0-U+024F) and their base letters, for ``translate``."""
    src, dst = [], []
    for code in range(0xC0, 0x250):
        char = chr(code)
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        if len(base) == 1 and base.isascii() and base.isalpha() and base != char:
            src.append(char)
            dst.append(base.lower())
    return "".join(src), "".join(dst)


FOLD_FROM, FOLD_TO = _fold_tables()
# The conversation archive (archive/index/postgres.py) compares texts folded:
# lower case, accented Latin letters as their base letter.
FOLDED = f"translate(lower({{}}), '{FOLD_FROM}', '{FOLD_TO}')"


def tsvector_of(expr: str) -> str:
    """The SQL of the archive's ``tsvector`` of the text ``expr``: its words, folded
    (anything but letters and digits splits words, so an e-mail's parts are words)."""
    words = f"regexp_replace({FOLDED.format(expr)}, '[[:punct:][:space:]]+', ' ', 'g')"
    return f"to_tsvector('simple', {words})"


# Rebuilds the archive's index from the record (step 4, ``chatserver archive reindex``).
# The GIN index is dropped and made again after the rows: faster than
# keeping it up to date row by row.  Statements may run long (about a minute
# per million messages): run them with ``ARCHIVE_TIMEOUT``.
ARCHIVE_TIMEOUT = 6 * 3600.0
ARCHIVE_REBUILD = (
    "DROP INDEX IF EXISTS archive_text_tsv",
    "TRUNCATE archive_text, archive_convs RESTART IDENTITY",
    "INSERT INTO archive_convs (conv_id, site_id)"
    " SELECT id, site_id FROM conversations ORDER BY created_at, id",
    'INSERT INTO archive_text (seq, "offset", body, tsv)'
    " SELECT a.seq, 0, v.name || ' ' || v.email, "
    + tsvector_of("v.name || ' ' || v.email")
    + " FROM archive_convs a JOIN conversations c ON c.id = a.conv_id"
    " JOIN visitors v ON v.id = c.visitor_id WHERE v.name != '' OR v.email != ''",
    'INSERT INTO archive_text (seq, "offset", body, tsv)'
    ' SELECT a.seq, e."offset", e.body, '
    + tsvector_of("e.body")
    + " FROM archive_convs a JOIN entries e ON e.conv_id = a.conv_id"
    " WHERE e.kind IN ('text', 'note') AND btrim(e.body) != ''",
    "CREATE INDEX archive_text_tsv ON archive_text USING gin (tsv)",
    # Statistics now (autovacuum comes later): the planner picks the GIN index
    # for a rare word and the newest-first scan for a common one from them.
    "ANALYZE archive_convs",
    "ANALYZE archive_text",
)


async def _archive(db: Connection) -> None:
    """Step 4: the conversation archive's order and full-text index, filled from the record."""
    await db.execute(
        "CREATE TABLE archive_convs (seq bigserial PRIMARY KEY, conv_id text NOT NULL UNIQUE,"
        " site_id text NOT NULL)"
    )
    await db.execute("CREATE INDEX archive_convs_site ON archive_convs (site_id, seq)")
    await db.execute(
        'CREATE TABLE archive_text (seq bigint NOT NULL, "offset" bigint NOT NULL,'
        ' body text NOT NULL, tsv tsvector NOT NULL, PRIMARY KEY (seq, "offset"))'
    )
    for statement in ARCHIVE_REBUILD:  # the GIN index too
        await db.execute(statement, timeout=ARCHIVE_TIMEOUT)


async def _audit(db: Connection) -> None:
    """Step 5: the audit log (chatserver/audit/)."""
    await db.execute(
        "CREATE TABLE audit_log (id bigserial PRIMARY KEY, site_id text NOT NULL,"
        " at double precision NOT NULL, actor text NOT NULL, actor_name text NOT NULL,"
        " action text NOT NULL, target text NOT NULL, address text NOT NULL,"
        " detail text NOT NULL)"
    )
    await db.execute("CREATE INDEX audit_log_site ON audit_log (site_id, id)")


# Step 6: the change feed and the outbox (chatserver/store/outbox.py,
# docs/integrations.md).  ``chat_append`` is replaced: the same function, with
# the conversation's place in the feed raised in the same statement as its
# offset.
_OUTBOX = (
    "CREATE SEQUENCE conv_feed_seq",
    "ALTER TABLE conversations ADD COLUMN feed_seq bigint NOT NULL DEFAULT 0",
    "CREATE INDEX conv_feed ON conversations (feed_seq)",
    "CREATE TABLE outbox_cursors (name text PRIMARY KEY, value bigint NOT NULL)",
    """CREATE TABLE outbox_jobs (
    id text PRIMARY KEY, site_id text NOT NULL, kind text NOT NULL, key text NOT NULL,
    seq bigint NOT NULL, payload text NOT NULL, state text NOT NULL,
    attempts integer NOT NULL, due_at double precision NOT NULL,
    created_at double precision NOT NULL, updated_at double precision NOT NULL,
    last_error text NOT NULL)""",
    "CREATE INDEX outbox_due ON outbox_jobs (due_at) WHERE state = 'pending'",
    "CREATE INDEX outbox_key ON outbox_jobs (key, seq) WHERE state = 'pending'",
    "CREATE INDEX outbox_site ON outbox_jobs (site_id, key text_pattern_ops, created_at)",
    "CREATE INDEX outbox_old ON outbox_jobs (updated_at) WHERE state <> 'pending'",
    """CREATE OR REPLACE FUNCTION chat_append(
    p_conv text, p_kind text, p_author_kind text, p_author_id text, p_author_name text,
    p_body text, p_ts double precision, p_cid text, p_data text, p_open_only boolean,
    p_member text)
RETURNS TABLE (e_duplicate boolean, e_offset bigint, e_kind text, e_author_kind text,
    e_author_id text, e_author_name text, e_body text, e_ts double precision, e_cid text,
    e_data text)
LANGUAGE plpgsql AS $fn$
DECLARE
    c record;
    n bigint;
BEGIN
    SELECT site_id, agents, state INTO c FROM conversations WHERE id = p_conv FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation %', p_conv USING ERRCODE = 'CH404';
    END IF;
    IF p_member IS NOT NULL AND NOT (c.agents::jsonb ? p_member) THEN
        RAISE EXCEPTION '% is not in conversation %', p_member, p_conv
            USING ERRCODE = 'CH403', DETAIL = c.site_id;
    END IF;
    IF p_cid IS NOT NULL THEN
        RETURN QUERY SELECT true, e."offset", e.kind, e.author_kind, e.author_id,
            e.author_name, e.body, e.ts, e.cid, e.data FROM entries e
            WHERE e.conv_id = p_conv AND e.author_id = p_author_id AND e.cid = p_cid;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF p_open_only AND c.state = 'closed' THEN
        RAISE EXCEPTION 'conversation % is closed', p_conv USING ERRCODE = 'CH409';
    END IF;
    UPDATE conversations SET last_offset = last_offset + 1,
        feed_seq = nextval('conv_feed_seq') WHERE id = p_conv
        RETURNING last_offset INTO n;
    INSERT INTO entries (conv_id, "offset", kind, author_kind, author_id, author_name, body,
        ts, cid, data)
        VALUES (p_conv, n, p_kind, p_author_kind, p_author_id, p_author_name, p_body, p_ts,
        p_cid, p_data);
    RETURN QUERY SELECT false, n, p_kind, p_author_kind, p_author_id, p_author_name, p_body,
        p_ts, p_cid, p_data;
END
$fn$""",
)


async def _outbox(db: Connection) -> None:
    """Step 6: conversations.feed_seq, outbox_cursors, outbox_jobs; chat_append raises
    feed_seq."""
    await db.execute(";\n".join(_OUTBOX))


_ERASED = (
    "CREATE TABLE erased_visitors (visitor_id text PRIMARY KEY, at double precision NOT NULL)",
    "CREATE INDEX attachments_site ON attachments (site_id, created_at)",
    "CREATE INDEX conv_closed ON conversations (site_id, closed_at) WHERE closed_at IS NOT NULL",
    "CREATE INDEX visitors_site ON visitors (site_id, created_at)",
)


async def _erased(db: Connection) -> None:
    """Step 7: erased_visitors and the indexes of erasure and retention."""
    await db.execute(";\n".join(_ERASED))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "every table and index", _schema),
    Migration(2, "recording_chunks: a recording's sealed chunk objects", _recording_chunks),
    Migration(
        3,
        "report_facts, report_rollups: a facts row per closed conversation, cells per day",
        _report_facts,
    ),
    Migration(4, "archive_convs, archive_text: the conversation archive's index", _archive),
    Migration(5, "audit_log: who did what (chatserver/audit/)", _audit),
    Migration(6, "conversations.feed_seq, outbox_cursors, outbox_jobs: the outbox", _outbox),
    Migration(7, "erased_visitors and the indexes of erasure and retention", _erased),
)

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, name text NOT NULL, applied_at double precision NOT NULL)"""


async def version(db: Connection) -> int:
    """The database's schema version (0 for a new one)."""
    exists = await db.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await db.fetchval("SELECT COALESCE(max(version), 0) FROM schema_version"))


async def migrate(
    db: Connection, migrations: Sequence[Migration] = MIGRATIONS, *, name: str = ""
) -> list[int]:
    """Bring the database of ``db`` (an asyncpg connection) to the last of ``migrations``.

    Returns the versions applied, in order (empty when it was up to date).
    Raises ``StoreError`` when the database is newer than the last step; an
    exception of a step propagates after its transaction is rolled back.
    ``name`` (the redacted URL) is for messages.
    """
    latest = migrations[-1].version if migrations else 0
    if [m.version for m in migrations] != list(range(1, latest + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3... in order")
    _refuse_newer(await version(db), latest, name)
    applied: list[int] = []
    for step in migrations:
        if await version(db) >= step.version:  # cheap check outside the transaction
            continue
        async with db.transaction():
            await db.execute("SELECT pg_advisory_xact_lock($1)", LOCK)
            await db.execute(_VERSION_TABLE)
            current = await version(db)
            _refuse_newer(current, latest, name)
            if current >= step.version:
                continue
            await step.apply(db)
            await db.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                step.version,
                step.name,
                time.time(),
            )
            applied.append(step.version)
        log.info("%s: schema version %d (%s)", name or "database", step.version, step.name)
    return applied


def _refuse_newer(found: int, latest: int, name: str) -> None:
    if found > latest:
        where = f"database {name}" if name else "the database"
        raise StoreError(
            f"{where} has schema version {found}, newer than this chatserver knows"
            f" (up to {latest}): it was written by a newer chatserver; upgrade chatserver"
            " (or restore the backup taken before the upgrade)"
        )
