"""The SQLite schema as numbered migrations, keyed by ``PRAGMA user_version``.

``MIGRATIONS`` is the ordered list of steps; step ``n`` brings a file from
version ``n - 1`` to ``n``.  ``migrate`` runs, on the writer's connection
before anything else touches the file, exactly the steps a file lacks, each
in one ``BEGIN IMMEDIATE`` transaction together with its ``user_version``
bump: a step is applied whole or not at all, so a failed step leaves the file
at the version before it (and the next start tries that step again).  A file
whose version is higher than the last step is refused with ``StoreError``:
a newer chatserver wrote it, and this one would misread it.

Step 1 is the whole schema as it stood when numbered migrations began: what
a new file gets.  It is also how a file written before them (``user_version``
0, tables present) is recognised and adopted: that file can be any of the
layouts the schema went through, and its version number cannot tell them
apart, so step 1 is written to find out and add what is missing: every
``CREATE`` says ``IF NOT EXISTS``, the columns added over time (``_ADDED``)
are added where absent, and the attachment byte counters are counted from
the rows once, unless a file already keeps them (``meta`` row
``attachment_bytes``).  From step 2 on a step can rely on its version: it
runs on exactly the schema of the step before it and needs no detection.

To change the schema, append a step (never edit a released one): a
function of the connection running plain ``db.execute`` statements (not
``executescript``, which would commit in the middle of the step), and a
line in docs/storage.md ("Schema versions and migrations").
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import StoreError
from .store import ATTACHMENT_BYTES

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    """Step ``version``: ``apply`` brings a file from ``version - 1`` to ``version``."""

    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


# Version 1: every table and index a new file gets (the columns in the order a
# file made before numbered migrations ended up with them).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    origins TEXT NOT NULL, settings TEXT NOT NULL, departments TEXT NOT NULL,
    created_at REAL NOT NULL, identity_secret TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL, password_hash TEXT NOT NULL, role TEXT NOT NULL,
    capacity INTEGER NOT NULL, departments TEXT NOT NULL, disabled INTEGER NOT NULL,
    created_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS agents_site ON agents (site_id)",
    """CREATE TABLE IF NOT EXISTS visitors (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, created_at REAL NOT NULL,
    name TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}', last_agent_id TEXT,
    visits INTEGER NOT NULL DEFAULT 0, user_id TEXT NOT NULL DEFAULT '',
    verified INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS page_views (
    id INTEGER PRIMARY KEY AUTOINCREMENT, visitor_id TEXT NOT NULL, url TEXT NOT NULL,
    title TEXT NOT NULL, referrer TEXT NOT NULL, ts REAL NOT NULL, visit INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS page_views_visitor ON page_views (visitor_id, id)",
    """CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, visitor_id TEXT NOT NULL,
    epoch TEXT NOT NULL, state TEXT NOT NULL, created_at REAL NOT NULL,
    queued_at REAL NOT NULL, department TEXT, agents TEXT NOT NULL,
    last_offset INTEGER NOT NULL, offline INTEGER NOT NULL, closed_at REAL,
    tags TEXT NOT NULL DEFAULT '[]', rating TEXT, rating_comment TEXT NOT NULL DEFAULT '',
    rated_at REAL)""",
    "CREATE INDEX IF NOT EXISTS conv_visitor ON conversations (visitor_id, created_at)",
    "CREATE INDEX IF NOT EXISTS conv_site_state ON conversations (site_id, state, queued_at)",
    """CREATE UNIQUE INDEX IF NOT EXISTS conv_one_open
    ON conversations (visitor_id) WHERE state != 'closed'""",
    """CREATE TABLE IF NOT EXISTS entries (
    conv_id TEXT NOT NULL, offset INTEGER NOT NULL, kind TEXT NOT NULL,
    author_kind TEXT NOT NULL, author_id TEXT NOT NULL, author_name TEXT NOT NULL,
    body TEXT NOT NULL, ts REAL NOT NULL, cid TEXT, data TEXT,
    PRIMARY KEY (conv_id, offset)) WITHOUT ROWID""",
    """CREATE UNIQUE INDEX IF NOT EXISTS entries_cid
    ON entries (conv_id, author_id, cid) WHERE cid IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS reads (
    conv_id TEXT NOT NULL, reader TEXT NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (conv_id, reader)) WITHOUT ROWID""",
    # site documents (canned responses, trigger rules)
    """CREATE TABLE IF NOT EXISTS docs (
    site_id TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (site_id, kind, id)) WITHOUT ROWID""",
    # proactive triggers: the last firing of each trigger per visitor; counters
    """CREATE TABLE IF NOT EXISTS trigger_firings (
    visitor_id TEXT NOT NULL, trigger_id TEXT NOT NULL, visit INTEGER NOT NULL,
    at REAL NOT NULL, followed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (visitor_id, trigger_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS counters (
    site_id TEXT NOT NULL, grp TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (site_id, grp, name)) WITHOUT ROWID""",
    # session recordings' index: one row per recording, its marks apart.  The tables
    # belong to recordings/index/sqlite.py (not to the core Store) but stay in step 1:
    # a released step is never edited, and every file already has them.
    """CREATE TABLE IF NOT EXISTS recordings (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, visitor_id TEXT NOT NULL, blob TEXT NOT NULL,
    created_at REAL NOT NULL, skew_ms REAL NOT NULL, started REAL NOT NULL, ended REAL NOT NULL,
    first_ts REAL NOT NULL, last_ts REAL NOT NULL, last_seq INTEGER NOT NULL,
    events INTEGER NOT NULL, bytes INTEGER NOT NULL, raw_bytes INTEGER NOT NULL,
    clicks INTEGER NOT NULL, inputs INTEGER NOT NULL, pages INTEGER NOT NULL,
    marks INTEGER NOT NULL, conv_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS recordings_site ON recordings (site_id, started, id)",
    "CREATE INDEX IF NOT EXISTS recordings_ended ON recordings (site_id, ended)",
    "CREATE INDEX IF NOT EXISTS recordings_visitor ON recordings (visitor_id)",
    """CREATE TABLE IF NOT EXISTS recording_marks (
    rec_id TEXT NOT NULL, n INTEGER NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL,
    url TEXT, data TEXT NOT NULL,
    PRIMARY KEY (rec_id, n)) WITHOUT ROWID""",
    # widget features: ratings, attachments, tracked events, verified identities;
    # unposted uploads are swept by age
    """CREATE TABLE IF NOT EXISTS attachments (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, uploader TEXT NOT NULL, name TEXT NOT NULL,
    content_type TEXT NOT NULL, size INTEGER NOT NULL, created_at REAL NOT NULL, conv_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS visitor_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, visitor_id TEXT NOT NULL, name TEXT NOT NULL,
    props TEXT NOT NULL, ts REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS visitor_events_visitor ON visitor_events (visitor_id, id)",
    """CREATE TABLE IF NOT EXISTS identities (
    site_id TEXT NOT NULL, user_id TEXT NOT NULL, visitor_id TEXT NOT NULL,
    PRIMARY KEY (site_id, user_id)) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS attachments_unposted ON attachments (created_at)
    WHERE conv_id IS NULL""",
    # agent sessions: generations ("log out everywhere") and revoked session ids
    """CREATE TABLE IF NOT EXISTS session_generations (
    agent_id TEXT PRIMARY KEY, generation INTEGER NOT NULL) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS revoked_sessions (
    id TEXT PRIMARY KEY, until REAL NOT NULL) WITHOUT ROWID""",
    # login throttle: the newest attempts of a key, a JSON list of [Unix time,
    # slot] (a bare Unix time is a failure recorded by an earlier version), kept
    # until ``until`` (the last attempt plus the window)
    """CREATE TABLE IF NOT EXISTS throttle (
    key TEXT PRIMARY KEY, stamps TEXT NOT NULL, until REAL NOT NULL) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS throttle_until ON throttle (until)",
)

# Columns that files made before numbered migrations may lack, in the order
# they were added: (table, column, definition).  Each has a default, so the
# rows a file already holds read as they did.
_ADDED = (
    ("visitors", "visits", "INTEGER NOT NULL DEFAULT 0"),  # page tracking
    ("conversations", "tags", "TEXT NOT NULL DEFAULT '[]'"),  # conversation tags
    ("sites", "identity_secret", "TEXT NOT NULL DEFAULT ''"),  # widget features
    ("conversations", "rating", "TEXT"),
    ("conversations", "rating_comment", "TEXT NOT NULL DEFAULT ''"),
    ("conversations", "rated_at", "REAL"),
    ("visitors", "user_id", "TEXT NOT NULL DEFAULT ''"),
    ("visitors", "verified", "INTEGER NOT NULL DEFAULT 0"),
)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _schema(db: sqlite3.Connection) -> None:
    """Step 1: the whole schema for a new file; for an older file, what it lacks."""
    for statement in SCHEMA:
        db.execute(statement)
    for table, column, definition in _ADDED:
        if column not in _columns(db, table):
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    # Each site's attachment bytes are counters kept with every write; a file
    # made before they existed has them counted once from its rows.  The meta
    # row stays, so that a chatserver from before numbered migrations, which
    # looks for it, does not count them again.
    if db.execute("SELECT 1 FROM meta WHERE key = 'attachment_bytes'").fetchone() is None:
        db.execute("DELETE FROM counters WHERE grp = ?", (ATTACHMENT_BYTES,))
        db.execute(
            "INSERT INTO counters (site_id, grp, name, value)"
            " SELECT site_id, ?, 'unposted_bytes', SUM(size) FROM attachments"
            " WHERE conv_id IS NULL GROUP BY site_id HAVING SUM(size) != 0",
            (ATTACHMENT_BYTES,),
        )
        db.execute(
            "INSERT INTO counters (site_id, grp, name, value)"
            " SELECT site_id, ?, 'total_bytes', SUM(size) FROM attachments"
            " GROUP BY site_id HAVING SUM(size) != 0",
            (ATTACHMENT_BYTES,),
        )
        db.execute("INSERT INTO meta (key, value) VALUES ('attachment_bytes', '1')")
    # Written before numbered migrations, never read: ``user_version`` decides.
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1')")


def _recording_chunks(db: sqlite3.Connection) -> None:
    # Recordings as immutable chunk objects (recordings/chunks.py): one row per chunk.
    db.execute(
        """CREATE TABLE IF NOT EXISTS recording_chunks (
    rec_id TEXT NOT NULL, key TEXT NOT NULL, first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL, bytes INTEGER NOT NULL, first_ts REAL NOT NULL,
    last_ts REAL NOT NULL, PRIMARY KEY (rec_id, key))"""
    )


def _report_facts(db: sqlite3.Connection) -> None:
    # One facts row per closed conversation (chatserver/reports/facts.py, docs/reports.md).
    db.execute(
        """CREATE TABLE IF NOT EXISTS report_facts (
    conv_id TEXT PRIMARY KEY, site_id TEXT NOT NULL, visitor_id TEXT NOT NULL,
    started REAL NOT NULL, closed REAL, department TEXT, agents TEXT NOT NULL,
    tags TEXT NOT NULL, offline INTEGER NOT NULL, served INTEGER NOT NULL,
    in_hours INTEGER NOT NULL, local_day TEXT NOT NULL, local_slot INTEGER NOT NULL,
    first_response REAL, queue_wait REAL, handling REAL, transfers INTEGER NOT NULL,
    msgs_visitor INTEGER NOT NULL, msgs_agent INTEGER NOT NULL, response_times TEXT NOT NULL,
    rating TEXT, comment TEXT NOT NULL, trigger_id TEXT, spans TEXT NOT NULL,
    replies TEXT NOT NULL, first_replier TEXT)"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS report_facts_site ON report_facts (site_id, started)")
    db.execute("CREATE INDEX IF NOT EXISTS report_facts_day ON report_facts (site_id, local_day)")
    # The rollup of a site's rows per local day and department (reports/rollup.py).
    db.execute(
        """CREATE TABLE IF NOT EXISTS report_rollups (
    site_id TEXT NOT NULL, local_day TEXT NOT NULL, department TEXT NOT NULL,
    n INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (site_id, local_day, department)) WITHOUT ROWID"""
    )


# The conversation archive (archive/index/sqlite.py): the archive's order and
# the full-text index, rebuilt from the record by ``ARCHIVE_REBUILD`` (also
# ``chatserver archive reindex``).
ARCHIVE_REBUILD = (
    "DELETE FROM archive_fts",
    "DELETE FROM archive_convs",
    "INSERT INTO archive_convs (conv_id, site_id)"
    " SELECT id, site_id FROM conversations ORDER BY created_at, id",
    "INSERT INTO archive_fts (rowid, text) SELECT a.seq << 24, v.name || ' ' || v.email"
    " FROM archive_convs a JOIN conversations c ON c.id = a.conv_id"
    " JOIN visitors v ON v.id = c.visitor_id WHERE v.name != '' OR v.email != ''",
    "INSERT INTO archive_fts (rowid, text) SELECT a.seq << 24 | e.offset, e.body"
    " FROM archive_convs a JOIN entries e ON e.conv_id = a.conv_id"
    " WHERE e.kind IN ('text', 'note') AND trim(e.body) != ''",
)


def _archive(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE archive_convs (seq INTEGER PRIMARY KEY, conv_id TEXT NOT NULL UNIQUE,"
        " site_id TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX archive_convs_site ON archive_convs (site_id, seq)")
    db.execute(
        "CREATE VIRTUAL TABLE archive_fts USING fts5"
        "(text, tokenize = 'unicode61 remove_diacritics 2')"
    )
    for statement in ARCHIVE_REBUILD:
        db.execute(statement)


def _audit(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, site_id TEXT NOT NULL,"
        " at REAL NOT NULL, actor TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,"
        " target TEXT NOT NULL, address TEXT NOT NULL, detail TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX audit_log_site ON audit_log (site_id, id)")


def _outbox(db: sqlite3.Connection) -> None:
    # The change feed (a conversation's place, raised by every append) and the
    # outbox's cursors and jobs (chatserver/store/outbox.py, docs/integrations.md).
    db.execute("ALTER TABLE conversations ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX conv_feed ON conversations (feed_seq)")
    db.execute(
        "CREATE TABLE outbox_cursors (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        """CREATE TABLE outbox_jobs (
    id TEXT PRIMARY KEY, site_id TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    seq INTEGER NOT NULL, payload TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL, due_at REAL NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL, last_error TEXT NOT NULL)"""
    )
    db.execute("CREATE INDEX outbox_due ON outbox_jobs (due_at) WHERE state = 'pending'")
    db.execute("CREATE INDEX outbox_key ON outbox_jobs (key, seq) WHERE state = 'pending'")
    db.execute("CREATE INDEX outbox_site ON outbox_jobs (site_id, key, created_at)")
    db.execute("CREATE INDEX outbox_old ON outbox_jobs (updated_at) WHERE state != 'pending'")


def _erased(db: sqlite3.Connection) -> None:
    # Erased visitors' ids (chatserver/store/erasure.py): a token naming one gets a new id.
    db.execute(
        "CREATE TABLE erased_visitors (visitor_id TEXT PRIMARY KEY, at REAL NOT NULL) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX attachments_site ON attachments (site_id, created_at)")
    db.execute(
        "CREATE INDEX conv_closed ON conversations (site_id, closed_at) WHERE closed_at IS NOT NULL"
    )
    db.execute("CREATE INDEX visitors_site ON visitors (site_id, created_at)")


def _archive_moved(db: sqlite3.Connection) -> None:
    # The archive's index lives in a file of its own beside this one
    # (archive/index/sqlite_file.py, ``ARCHIVE_FILE_MIGRATIONS``), written by a
    # thread of its own: its FTS5 batches no longer hold the messages' commits.
    db.execute("DROP TABLE IF EXISTS archive_fts")
    db.execute("DROP TABLE IF EXISTS archive_convs")


def _feed_in_entries(db: sqlite3.Connection) -> None:
    # An append writes its entry and nothing else (store/sqlite/conversations.py):
    # the change feed's place moves from the conversation's row to the entry
    # (``entries.seq``, the newest entry's being the conversation's place), and
    # the last offset is read from the entries.  Each conversation's place so
    # far goes to its newest entry, so consumers' cursors keep their meaning.
    db.execute("ALTER TABLE entries ADD COLUMN seq INTEGER")
    db.execute(
        "UPDATE entries SET seq = c.feed_seq FROM conversations c"
        " WHERE c.id = entries.conv_id AND entries.offset = c.last_offset AND c.feed_seq > 0"
    )
    db.execute("CREATE INDEX entries_feed ON entries (seq) WHERE seq IS NOT NULL")
    db.execute("DROP INDEX conv_feed")
    db.execute("ALTER TABLE conversations DROP COLUMN feed_seq")
    db.execute("ALTER TABLE conversations DROP COLUMN last_offset")


def _cid_window(db: sqlite3.Connection) -> None:
    # A resend's first copy is looked for among the conversation's newest
    # CID_WINDOW entries (store/sqlite/conversations.py), on the pages the
    # append reads and writes anyway: the index that found it anywhere cost a
    # page at a random place per message (``bench.btree --without cid-index``).
    db.execute("DROP INDEX IF EXISTS entries_cid")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "every table, index and column; older files gain what they lack", _schema),
    Migration(2, "recording_chunks: a recording's sealed chunk objects", _recording_chunks),
    Migration(
        3,
        "report_facts, report_rollups: a facts row per closed conversation, cells per day",
        _report_facts,
    ),
    Migration(4, "archive_convs, archive_fts: the conversation archive's index", _archive),
    Migration(5, "audit_log: who did what (chatserver/audit/)", _audit),
    Migration(6, "conversations.feed_seq, outbox_cursors, outbox_jobs: the outbox", _outbox),
    Migration(7, "erased_visitors and the indexes of erasure and retention", _erased),
    Migration(
        8, "archive_convs, archive_fts dropped: the archive has a file of its own", _archive_moved
    ),
    Migration(
        9,
        "entries.seq: the change feed's place and the last offset come from the entries",
        _feed_in_entries,
    ),
    Migration(
        10,
        "entries_cid dropped: a resend is looked for among the conversation's newest entries",
        _cid_window,
    ),
)

# The archive's own file (``<store>.archive.db``, archive/index/sqlite_file.py):
# the same tables as step 4 made here, filled from the record (attached as
# ``rec``, read-only) when the file is new.
ARCHIVE_FILE_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "archive_convs, archive_fts: the archive's index, from the record", _archive),
)


def version(db: sqlite3.Connection) -> int:
    """The file's schema version (``PRAGMA user_version``; 0 for a new file)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS, *, name: str = ""
) -> list[int]:
    """Bring the file of ``db`` (autocommit mode) to the last of ``migrations``.

    Returns the versions applied, in order (empty when the file was up to
    date).  Raises ``StoreError`` when the file is newer than the last step;
    an exception of a step propagates after its transaction is rolled back.
    ``name`` (the file's path) is for messages.  Several processes may start
    on one file at once: each step re-reads the version inside its
    transaction, so a step another process applied meanwhile is not repeated.
    """
    latest = migrations[-1].version if migrations else 0
    if [m.version for m in migrations] != list(range(1, latest + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3... in order")
    _refuse_newer(version(db), latest, name)
    applied: list[int] = []
    for step in migrations:
        if version(db) >= step.version:  # cheap check outside the transaction
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            current = version(db)
            _refuse_newer(current, latest, name)
            if current < step.version:
                step.apply(db)
                db.execute(f"PRAGMA user_version = {step.version:d}")
                applied.append(step.version)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if applied and applied[-1] == step.version:
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
