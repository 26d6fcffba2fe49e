"""``chatserver privacy export``: answer an access request from the command line.

Works on the same store and blobs as the server (``--data``, ``--redis``,
``--database``, ``--blobs`` and the ``--s3-*`` options, with their
``CHATSERVER_*`` twins) and may run while it serves.  The visitor is named
by id, by the shop's customer id or by e-mail (every record of that person);
the archive goes to ``--out`` (docs/privacy.md).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from ..audit import open_audit
from ..cli.admin import find_site, with_store
from ..cli.options import add_blobs_option, add_data_option, blobs_from
from ..errors import ChatError
from ..store import Store
from .export import Request, Sources, export, find


def add_commands(sub: Any) -> None:
    """Add ``privacy`` and its actions to the ``chatserver`` parser."""
    top = sub.add_parser("privacy", help="access requests (docs/privacy.md)")
    actions = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    out = actions.add_parser("export", help="everything stored about one visitor, as a zip")
    out.add_argument("--site", required=True, help="the site (key or id)")
    who = out.add_argument_group("who (at least one)")
    who.add_argument("--visitor", default="", help="a visitor id (v_...)")
    who.add_argument("--user-id", default="", help="the shop's customer id (identify)")
    who.add_argument("--email", default="", help="an e-mail address: every record with it")
    out.add_argument("--notes", action="store_true", help="include agents' internal notes")
    out.add_argument("--out", type=Path, required=True, help="the zip file to write")
    add_data_option(out)
    add_blobs_option(out)


async def _export(store: Store, args: argparse.Namespace) -> int:
    from recordings.index import open_index

    request = Request(args.visitor, args.user_id, args.email)
    if not request:
        raise ChatError("name the visitor: --visitor, --user-id or --email")
    site = await find_site(store, args.site)
    src = Sources(store, blobs_from(args), open_index(store))
    try:
        data = await export(src, site.id, request, notes=args.notes)
    except LookupError:
        raise ChatError(f"no visitor of site {site.key} matches") from None
    who = ",".join(v.id for v in await find(src, site.id, request))
    await open_audit(store).add(
        site.id, "cli", "cli", "visitor.export", who, detail={"notes": args.notes}
    )
    args.out.write_bytes(data)
    return len(data)


def run(args: argparse.Namespace) -> None:
    size = asyncio.run(with_store(args.data, lambda s: _export(s, args), args.redis, args.database))
    print(f"wrote {args.out} ({size} bytes)")
