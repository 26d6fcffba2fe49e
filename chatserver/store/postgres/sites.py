"""Sites, their identity secret and their documents, on PostgreSQL."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

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
from .engine import PostgresEngine
from .rows import _SITE_COLS, _site

_DOC_COLS = "site_id, kind, id, data, created_at, updated_at"


def _doc(row: Any) -> Doc:
    return Doc(row[0], row[1], row[2], json.loads(row[3]), row[4], row[5])


class PostgresSites(PostgresEngine):
    """``SiteStore`` on PostgreSQL: the methods of its domain over the shared engine."""

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

        async def op(db: Any) -> Site:
            await db.execute(
                f"INSERT INTO sites ({_SITE_COLS}, identity_secret)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                site.id,
                site.key,
                site.name,
                json.dumps(site.allowed_origins),
                json.dumps(site.settings.to_json()),
                json.dumps(site.departments),
                site.created_at,
                secrets.token_hex(32),
            )
            return site

        return await self._tx(op)

    async def get_site(self, site_id: SiteId) -> Site | None:
        row = await self._fetchrow(f"SELECT {_SITE_COLS} FROM sites WHERE id = $1", site_id)
        return _site(row) if row else None

    async def site_by_key(self, key: str) -> Site | None:
        row = await self._fetchrow(f"SELECT {_SITE_COLS} FROM sites WHERE key = $1", key)
        return _site(row) if row else None

    async def save_site(self, site: Site) -> None:
        async def op(db: Any) -> None:
            done = await db.execute(
                "UPDATE sites SET name = $1, origins = $2, settings = $3, departments = $4"
                " WHERE id = $5",
                site.name,
                json.dumps(site.allowed_origins),
                json.dumps(site.settings.to_json()),
                json.dumps(site.departments),
                site.id,
            )
            if done == "UPDATE 0":
                raise NotFound(f"site {site.id}")

        await self._tx(op)

    async def list_sites(self) -> list[Site]:
        rows = await self._fetch(f"SELECT {_SITE_COLS} FROM sites ORDER BY created_at, id")
        return [_site(r) for r in rows]

    async def put_doc(self, site_id: SiteId, kind: str, doc_id: str, data: JSON) -> Doc:
        stamp = now()
        body = json.dumps(data)

        async def op(db: Any) -> Doc:
            created = await db.fetchval(
                f"INSERT INTO docs ({_DOC_COLS}) VALUES ($1, $2, $3, $4, $5, $5)"
                " ON CONFLICT (site_id, kind, id) DO UPDATE"
                " SET data = excluded.data, updated_at = excluded.updated_at"
                " RETURNING created_at",
                site_id,
                kind,
                doc_id,
                body,
                stamp,
            )
            return Doc(site_id, kind, doc_id, json.loads(body), created, stamp)

        return await self._tx(op)

    async def get_doc(self, site_id: SiteId, kind: str, doc_id: str) -> Doc | None:
        row = await self._fetchrow(
            f"SELECT {_DOC_COLS} FROM docs WHERE site_id = $1 AND kind = $2 AND id = $3",
            site_id,
            kind,
            doc_id,
        )
        return _doc(row) if row else None

    async def list_docs(self, site_id: SiteId, kind: str) -> list[Doc]:
        rows = await self._fetch(
            f"SELECT {_DOC_COLS} FROM docs WHERE site_id = $1 AND kind = $2"
            " ORDER BY created_at, id",
            site_id,
            kind,
        )
        return [_doc(r) for r in rows]

    async def delete_doc(self, site_id: SiteId, kind: str, doc_id: str) -> bool:
        async def op(db: Any) -> bool:
            done = await db.execute(
                "DELETE FROM docs WHERE site_id = $1 AND kind = $2 AND id = $3",
                site_id,
                kind,
                doc_id,
            )
            return bool(done != "DELETE 0")

        return await self._tx(op)

    async def identity_secret(self, site_id: SiteId, *, rotate: bool = False) -> str:
        fresh = secrets.token_hex(32)

        async def op(db: Any) -> str:
            value = await db.fetchval(
                "UPDATE sites SET identity_secret = CASE WHEN $3 OR identity_secret = ''"
                " THEN $1 ELSE identity_secret END WHERE id = $2 RETURNING identity_secret",
                fresh,
                site_id,
                rotate,
            )
            if value is None:
                raise NotFound(f"site {site_id}")
            return str(value)

        return await self._tx(op)
