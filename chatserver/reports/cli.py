"""``chatserver reports rebuild``: recompute every facts row from the record.

Works on the same store as the server (``--data``, ``--redis``,
``--database`` and their ``CHATSERVER_*`` twins) and may run while it serves:
a row is replaced whole, and the server writes the same row from the same
entries.  ``--site`` limits it to one site (key or id).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from ..cli.admin import find_site, with_store
from ..cli.options import add_data_option
from ..store import Store
from .service import rebuild


def add_commands(sub: Any) -> None:
    """Add ``reports`` and its actions to the ``chatserver`` parser."""
    rep = sub.add_parser("reports", help="reports (docs/reports.md)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    again = rep.add_parser(
        "rebuild", help="recompute every closed conversation's facts row from its entries"
    )
    again.add_argument("--site", help="only this site (key or id); default every site")
    add_data_option(again)


async def _rebuild(store: Store, args: argparse.Namespace) -> tuple[int, int]:
    sites = [await find_site(store, args.site)] if args.site else await store.list_sites()
    count = 0
    for site in sites:
        count += await rebuild(store, site.id)
    return count, len(sites)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    count, sites = asyncio.run(
        with_store(args.data, lambda s: _rebuild(s, args), args.redis, args.database)
    )
    took = time.perf_counter() - started
    print(f"rebuilt {count} conversation facts rows of {sites} site(s) in {took:.1f} s")
