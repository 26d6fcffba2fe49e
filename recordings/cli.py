"""``chatserver recordings ...``: settings, retention purge, deletion on request.

The commands work on the same store and blob store as the server
(``--data``, ``--redis``, ``--blobs`` with the ``--s3-*`` options, with their
``CHATSERVER_*`` twins), and may run while it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from typing import Any

from chatserver.cli.admin import find_site, with_store
from chatserver.cli.options import add_blobs_option, add_data_option, blobs_from
from chatserver.errors import ChatError
from chatserver.store import Store

from . import retention
from .index import open_index


def add_commands(sub: Any) -> None:
    """Add ``recordings`` and its actions to the ``chatserver`` parser."""
    rec = sub.add_parser("recordings", help="session recordings").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    settings = rec.add_parser("settings", help="show or change a site's recording settings")
    settings.add_argument("site", help="site key or site id")
    on = settings.add_mutually_exclusive_group()
    on.add_argument("--on", dest="recording", action="store_true", default=None)
    on.add_argument("--off", dest="recording", action="store_false")
    settings.add_argument("--sample", type=float, help="share of visits recorded, 0 to 1")
    consent = settings.add_mutually_exclusive_group()
    consent.add_argument(
        "--consent",
        dest="consent",
        action="store_true",
        default=None,
        help='record only after the page calls $chat.push(["consent", true])',
    )
    consent.add_argument("--no-consent", dest="consent", action="store_false")
    settings.add_argument(
        "--retention-days", type=int, help="delete recordings older than this (0: keep)"
    )
    settings.add_argument(
        "--rewind-seconds",
        type=int,
        help="seconds of a chatting visitor's recording its agents may rewind (0: none)",
    )
    add_data_option(settings)
    purge = rec.add_parser("purge", help="delete recordings past each site's retention now")
    add_data_option(purge)
    add_blobs_option(purge)
    forget = rec.add_parser("delete-visitor", help="delete every recording of one visitor")
    forget.add_argument("visitor", help="the visitor id (v_...)")
    add_data_option(forget)
    add_blobs_option(forget)


def run(args: argparse.Namespace) -> None:
    if args.action == "settings":
        asyncio.run(with_store(args.data, lambda s: _settings(s, args), args.redis, args.database))
    elif args.action == "purge":

        async def purge(store: Store) -> int:
            return await retention.purge(store, open_index(store), blobs_from(args))

        count = asyncio.run(with_store(args.data, purge, args.redis, args.database))
        print(f"deleted {count} recordings")
    elif args.action == "delete-visitor":

        async def forget(store: Store) -> int:
            return await retention.delete_visitor(open_index(store), blobs_from(args), args.visitor)

        count = asyncio.run(with_store(args.data, forget, args.redis, args.database))
        print(f"deleted {count} recordings of {args.visitor}")


async def _settings(store: Store, args: argparse.Namespace) -> None:
    site = await find_site(store, args.site)
    changes: dict[str, Any] = {}
    if args.recording is not None:
        changes["recording"] = args.recording
    if args.sample is not None:
        if not 0.0 <= args.sample <= 1.0:
            raise ChatError("--sample is a share from 0 to 1")
        changes["recording_sample"] = args.sample
    if args.consent is not None:
        changes["recording_consent"] = args.consent
    if args.retention_days is not None:
        changes["recording_retention_days"] = args.retention_days
    if args.rewind_seconds is not None:
        if not 0 <= args.rewind_seconds <= 600:
            raise ChatError("--rewind-seconds is 0 to 600")
        changes["rewind_seconds"] = args.rewind_seconds
    if changes:
        site = dataclasses.replace(site, settings=dataclasses.replace(site.settings, **changes))
        await store.save_site(site)
    s = site.settings
    print(
        f"{site.name}: recording {'on' if s.recording else 'off'}, sample {s.recording_sample:g}, "
        f"consent {'required' if s.recording_consent else 'not required'}, "
        f"retention {s.recording_retention_days} days, rewind {s.rewind_seconds} s"
    )
