"""``chatserver archive reindex``: rebuild the archive's index from the record.

Works on the same store as the server (``--data``, ``--redis``,
``--database`` with their ``CHATSERVER_*`` twins) and may run while it
serves: on SQLite and PostgreSQL the rebuild is one transaction (writes wait
for it on SQLite; docs/archive.md gives the time per million messages).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from chatserver.cli.admin import with_store
from chatserver.cli.options import add_data_option
from chatserver.store import Store

from .index import open_archive


def add_commands(sub: Any) -> None:
    """Add ``archive`` and its actions to the ``chatserver`` parser."""
    arc = sub.add_parser("archive", help="the conversation archive").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    reindex = arc.add_parser(
        "reindex", help="rebuild the archive's search index from the stored conversations"
    )
    add_data_option(reindex)


def run(args: argparse.Namespace) -> None:
    if args.action == "reindex":

        async def rebuild(store: Store) -> int:
            index = open_archive(store)
            try:
                return await index.reindex()
            finally:
                await index.close()

        started = time.monotonic()
        count = asyncio.run(with_store(args.data, rebuild, args.redis, args.database))
        print(f"indexed {count} conversations in {time.monotonic() - started:.1f} s")
