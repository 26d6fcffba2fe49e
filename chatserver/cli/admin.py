"""``chatserver site ...``, ``chatserver agent add`` and the demo's site and logins."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from ..errors import ChatError
from ..security import hash_password_off_loop
from ..store import Store
from ..store_sqlite import SQLiteStore
from ..types import Role, Site, SiteSettings
from ..web.demo import DEMO_ADMIN_EMAIL, DEMO_DEPARTMENTS, DEMO_EMAIL, DEMO_SITE, demo_site

T = TypeVar("T")


async def with_store(
    data: Path,
    work: Callable[[Store], Awaitable[T]],
    redis_url: str | None = None,
    database_url: str | None = None,
) -> T:
    store: Store
    if database_url:  # PostgreSQL is the record, with or without Redis
        from ..store.postgres import PostgresStore

        store = PostgresStore(database_url)
    elif redis_url:
        from ..store_redis import RedisStore

        store = RedisStore(redis_url)
    else:
        store = SQLiteStore(data / "chatserver.db")
    await store.start()
    try:
        return await work(store)
    finally:
        await store.close()


async def find_site(store: Store, ref: str) -> Site:
    site = await store.site_by_key(ref) or await store.get_site(ref)
    if site is None:
        raise ChatError(f"no site with key or id {ref!r}")
    return site


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            raise ChatError("passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise ChatError("a password needs at least 8 characters")
    return password


def cmd_site_add(args: argparse.Namespace) -> None:
    async def work(store: Store) -> Site:
        settings = SiteSettings(
            typing_preview=not args.no_typing_preview, require_identity=args.require_identity
        )
        return await store.create_site(args.name, args.origin, settings, args.department)

    site = asyncio.run(with_store(args.data, work, args.redis, args.database))
    print(f"site {site.name!r} id {site.id}")
    print(f"site key: {site.key}")


def cmd_site_list(args: argparse.Namespace) -> None:
    async def work(store: Store) -> list[Site]:
        return await store.list_sites()

    sites = asyncio.run(with_store(args.data, work, args.redis, args.database))
    for site in sites:
        origins = ", ".join(site.allowed_origins) or "any origin"
        print(f"{site.key}  {site.id}  {site.name}  ({origins})")


def cmd_site_secret(args: argparse.Namespace) -> None:
    async def work(store: Store) -> tuple[Site, str]:
        site = await find_site(store, args.site)
        if args.require is not None:
            settings = replace(site.settings, require_identity=args.require)
            site = replace(site, settings=settings)
            await store.save_site(site)
        return site, await store.identity_secret(site.id, rotate=args.rotate)

    site, secret = asyncio.run(with_store(args.data, work, args.redis, args.database))
    state = "required" if site.settings.require_identity else "optional"
    print(f"identity secret of {site.name!r} ({site.key}): {secret}")
    print(f"identity verification: {state}; keep the secret on the shop's server only")


def cmd_agent_add(args: argparse.Namespace) -> None:
    password = _read_password()

    async def work(store: Store) -> None:
        site = await find_site(store, args.site)
        unknown = set(args.department) - set(site.departments)
        if unknown:
            raise ChatError(f"unknown departments for this site: {', '.join(sorted(unknown))}")
        agent = await store.create_agent(
            site.id,
            args.email,
            args.name,
            await hash_password_off_loop(password),
            Role.ADMIN if args.admin else Role.AGENT,
            args.capacity,
            args.department,
        )
        print(f"agent {agent.email} ({agent.role.value}) added to {site.name} as {agent.id}")

    asyncio.run(with_store(args.data, work, args.redis, args.database))


async def ensure_demo(
    data: Path, redis_url: str | None = None, database_url: str | None = None
) -> tuple[Site, dict[str, str]]:
    """Create the demo site and agents once; return the site and the logins."""
    logins_file = data / "demo-logins.txt"

    async def work(store: Store) -> tuple[Site, dict[str, str]]:
        site = await demo_site(store) or await store.create_site(
            DEMO_SITE, (), SiteSettings(greeting="Hi! How can we help?"), DEMO_DEPARTMENTS
        )
        logins: dict[str, str] = {}
        if logins_file.exists():
            for line in logins_file.read_text().splitlines():
                email, _, password = line.partition(" ")
                logins[email] = password
        for email, name, role in (
            (DEMO_EMAIL, "Anna (demo agent)", Role.AGENT),
            (DEMO_ADMIN_EMAIL, "Marc (demo admin)", Role.ADMIN),
        ):
            if await store.agent_by_email(email) is None:
                password = secrets.token_urlsafe(9)
                await store.create_agent(
                    site.id,
                    email,
                    name,
                    await hash_password_off_loop(password),
                    role,
                    5,
                    DEMO_DEPARTMENTS,
                )
                logins[email] = password
        fd = os.open(logins_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{e} {p}\n" for e, p in logins.items())
        return site, logins

    data.mkdir(parents=True, exist_ok=True)
    return await with_store(data, work, redis_url, database_url)
