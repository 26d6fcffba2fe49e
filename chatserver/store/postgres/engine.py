"""The PostgreSQL Store's engine: a pool of asyncpg connections, transactions, errors.

``PostgresEngine`` holds one ``asyncpg`` pool for the URL it is given
(``postgresql://user:password@host:port/database``; query parameters that
asyncpg does not know, such as ``search_path``, are sent as server settings).
``start`` opens the pool and brings the schema to the last step of
``migrations_postgres`` (a database written by a newer chatserver is refused
with ``StoreError`` before anything else runs).

* **Writes** run in ``_tx``: one transaction on one pooled connection; the
  awaited call returns after ``COMMIT`` has returned, and with PostgreSQL's
  default ``synchronous_commit = on`` that means the commit record is flushed
  to the write-ahead log: acknowledged means committed and durable.  A write
  that touches several domains is one ``_tx`` (one transaction).
* **Reads** (``_fetchrow``, ``_fetch``, ``_fetchval``) run as single
  statements: each sees every transaction committed before it started.
* **Errors.** Every failure of the driver or the server reaches the caller as
  ``StoreError`` (``NotFound``, ``Closed``, ``NotMember`` raised by the domain
  code pass through): a lost or refused connection says so ("connection to
  ... lost"), with the URL redacted (``redact.redact_url``) and any secret
  scrubbed from the driver's text.  A transaction that PostgreSQL aborted as a
  deadlock victim or a serialization failure is run again, up to
  ``RETRIES`` times, since nothing of it was committed.

The operations' own atomicity comes from row locks (``SELECT ... FOR
UPDATE``, ``UPDATE ... RETURNING``), unique indexes with ``ON CONFLICT``, and,
where no row exists yet to lock (the login throttle, trigger firings),
transaction-scoped advisory locks on a hash of the key (``_lock``), always
taken in sorted order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import asyncpg

from ... import migrations_postgres
from ...errors import Closed, NotFound, NotMember, StoreError
from ...redact import redact_url, scrub

T = TypeVar("T")

Connection = Any  # asyncpg.Connection (asyncpg ships no type hints)

RETRIES = 5  # runs of a transaction aborted as a deadlock victim or serialization failure

_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,  # "connection is closed", pool closing
    OSError,  # refused, reset, unreachable
    TimeoutError,
)
_RETRY_ERRORS = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class PostgresEngine:
    """One pool of connections to a PostgreSQL database (see the module docstring).

    Every domain module (``sites``, ``agents``, ...) subclasses it and runs its
    writes through ``_tx`` and its reads through ``_fetchrow`` / ``_fetch`` /
    ``_fetchval``.  A domain kept outside the core Store on the same database
    (the recordings index) uses ``run`` and ``fetch``.
    """

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
    ) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                f"not a PostgreSQL URL (postgresql://user:password@host/db): {redact_url(url)}"
            )
        self.url = url
        self.name = redact_url(url)
        self._min, self._max, self._timeout = min_size, max_size, timeout
        self._pool: Any = None

    async def start(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min,
                max_size=self._max,
                timeout=self._timeout,
                command_timeout=60,
            )
        except Exception as exc:
            raise self._error(exc) from None
        try:
            async with pool.acquire() as db:
                await migrations_postgres.migrate(db, name=self.name)
        except StoreError:
            await pool.close()
            raise
        except Exception as exc:
            await pool.close()
            raise self._error(exc) from None
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, *_CONNECTION_ERRORS):
                pool.terminate()

    def _error(self, exc: BaseException) -> StoreError:
        """``exc`` of the driver as a ``StoreError`` that names no secret.

        The SQLSTATEs our SQL functions raise (``migrations_postgres``) become
        the domain's errors: CH404 ``NotFound``, CH403 ``NotMember``, CH409 ``Closed``.
        """
        state = getattr(exc, "sqlstate", None)
        message = str(getattr(exc, "message", "") or "")
        if state == "CH404":
            return NotFound(message)
        if state == "CH403":
            return NotMember(message, str(getattr(exc, "detail", "") or ""))
        if state == "CH409":
            return Closed(message)
        text = scrub(str(exc), self.url) or type(exc).__name__
        if isinstance(exc, _CONNECTION_ERRORS):
            return StoreError(f"postgres {self.name}: connection lost or refused: {text}")
        return StoreError(f"postgres {self.name}: {text}")

    def _started(self) -> Any:
        if self._pool is None:
            raise StoreError("store is not started")
        return self._pool

    async def _tx(self, op: Callable[[Connection], Awaitable[T]], *, snapshot: bool = False) -> T:
        """Run ``op`` in one transaction; returns after the commit.

        With ``snapshot`` the transaction is read-only and every statement in
        it sees one snapshot (``REPEATABLE READ``).
        """
        pool = self._started()
        isolation = "repeatable_read" if snapshot else "read_committed"
        for attempt in range(RETRIES):
            try:
                async with (
                    pool.acquire() as db,
                    db.transaction(isolation=isolation, readonly=snapshot),
                ):
                    return await op(db)
            except StoreError:
                raise
            except _RETRY_ERRORS as exc:
                if attempt == RETRIES - 1:
                    raise self._error(exc) from None
                await asyncio.sleep(0.005 * (attempt + 1))
            except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
                raise self._error(exc) from None
        raise AssertionError("unreachable")

    async def run(self, op: Callable[[Connection], Awaitable[T]]) -> T:
        """Run ``op`` (a function of an asyncpg connection) in one transaction;
        resolves after the commit.  For store domains kept outside
        ``chatserver/store/`` on the same database (tables of ``migrations_postgres``)."""
        return await self._tx(op)

    async def _call(self, method: str, sql: str, args: Iterable[Any]) -> Any:
        pool = self._started()
        try:
            return await getattr(pool, method)(sql, *args)
        except (asyncpg.PostgresError, *_CONNECTION_ERRORS) as exc:
            raise self._error(exc) from None

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._call("fetchrow", sql, args)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        return list(await self._call("fetch", sql, args))

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        return await self._call("fetchval", sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        """The rows of one read-only statement (for domains outside the core Store)."""
        return await self._fetch(sql, *args)

    async def ping(self) -> None:
        await self._fetchval("SELECT 1")

    @staticmethod
    async def _lock(db: Connection, *keys: str) -> None:
        """Transaction-scoped advisory locks on ``keys`` (their hashes), in sorted order."""
        for key in sorted(set(keys)):
            await db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
