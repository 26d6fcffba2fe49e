"""Sites, their identity secret and their documents, on SQLite."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence

from ...errors import NotFound
from ...types import (
    JSON,
    DepartmentId,
    Doc,
    Site,
    SiteId,
    SiteSettings,
    new_id,
    now,
)
from .engine import SQLiteEngine
from .rows import (
    _SITE_COLS,
    _site,
)


def _doc(row: sqlite3.Row) -> Doc:
    return Doc(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


class SQLiteSites(SQLiteEngine):
    """``SiteStore`` on SQLite: the methods of its domain over the shared engine."""

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
