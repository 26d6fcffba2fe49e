"""``chatserver privacy export|erase``: answer an access or erasure request from a shell.

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
from ..types import Site
from .export import Request, Sources, export, find


def add_commands(sub: Any) -> None:
    """Add ``privacy`` and its actions to the ``chatserver`` parser."""
    top = sub.add_parser("privacy", help="access requests (docs/privacy.md)")
    actions = top.add_subparsers(dest="action", required=True, metavar="ACTION")
    out = actions.add_parser("export", help="everything stored about one visitor, as a zip")
    _who(out)
    out.add_argument("--notes", action="store_true", help="include agents' internal notes")
    out.add_argument("--out", type=Path, required=True, help="the zip file to write")
    add_data_option(out)
    add_blobs_option(out)
    gone = actions.add_parser("erase", help="delete everything stored about one visitor")
    _who(gone)
    gone.add_argument(
        "--drop-from-reports",
        action="store_true",
        help="delete the conversations' report rows too (default: kept, without text or person)",
    )
    gone.add_argument("--yes", action="store_true", help="erase without asking")
    add_data_option(gone)
    add_blobs_option(gone)


def _who(parser: Any) -> None:
    """The site and the person a request names (as for an export, so for an erasure)."""
    parser.add_argument("--site", required=True, help="the site (key or id)")
    who = parser.add_argument_group("who (at least one)")
    who.add_argument("--visitor", default="", help="a visitor id (v_...)")
    who.add_argument("--user-id", default="", help="the shop's customer id (identify)")
    who.add_argument("--email", default="", help="an e-mail address: every record with it")


async def _named(store: Store, args: argparse.Namespace) -> tuple[Site, Request]:
    request = Request(args.visitor, args.user_id, args.email)
    if not request:
        raise ChatError("name the visitor: --visitor, --user-id or --email")
    return await find_site(store, args.site), request


async def _export(store: Store, args: argparse.Namespace) -> int:
    from recordings.index import open_index

    site, request = await _named(store, args)
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


async def _erase(store: Store, args: argparse.Namespace) -> str:
    from archive.index import open_archive
    from recordings.index import open_index

    from .erase import erase

    site, request = await _named(store, args)
    src = Sources(store, blobs_from(args), open_index(store))
    found = await find(src, site.id, request)
    if not found:
        raise ChatError(f"no visitor of site {site.key} matches")
    listed = ", ".join(f"{v.id} ({v.name or 'no name'}, {v.email or 'no e-mail'})" for v in found)
    if not args.yes:
        answer = await asyncio.to_thread(input, f"erase {listed} for good? type ERASE: ")
        if answer.strip() != "ERASE":
            raise ChatError("nothing erased")
    keep = not args.drop_from_reports
    index = open_archive(store)
    try:
        result = await erase(src, index, site.id, found, keep_facts=keep)
    finally:
        await index.close()
    ids = ",".join(v.id for v in found)
    counts = result.counts()
    await open_audit(store).add(
        site.id, "cli", "cli", "visitor.erase", ids, detail={"keep_facts": keep, **counts}
    )
    return ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items())


def run(args: argparse.Namespace) -> None:
    if args.action == "erase":
        said = asyncio.run(
            with_store(args.data, lambda s: _erase(s, args), args.redis, args.database)
        )
        print(f"erased: {said}")
        print(
            "a server serving this data keeps a visitor who is connected now until they"
            " reconnect (as a new visitor); the console's erase closes them at once"
        )
        return
    size = asyncio.run(with_store(args.data, lambda s: _export(s, args), args.redis, args.database))
    print(f"wrote {args.out} ({size} bytes)")
