"""The ``chatserver`` command: the parser of every subcommand, and ``main``."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import ChatError
from ..redact import install as install_redaction
from ..redact import protect, scrub
from .admin import cmd_agent_add, cmd_site_add, cmd_site_list, cmd_site_secret
from .options import add_data_option, add_server_options, config_from
from .serve import cmd_demo, serve


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="chatserver", description="Self-hosted live chat for online shops."
    )
    root.add_argument("--version", action="version", version=f"chatserver {__version__}")
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    add_server_options(serve)
    add_data_option(serve, redis=False)

    demo = sub.add_parser(
        "demo", help="create the demo site and agents if missing, print the logins, then serve"
    )
    add_server_options(demo)
    add_data_option(demo, redis=False)

    site = sub.add_parser("site", help="manage sites").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    site_add = site.add_parser("add", help="add a site and print its key")
    site_add.add_argument("name", help="the shop's name, shown to visitors")
    site_add.add_argument(
        "--origin",
        action="append",
        default=[],
        help="allowed page origin such as https://shop.example (repeatable; none allows all)",
    )
    site_add.add_argument(
        "--department", action="append", default=[], help="a department name (repeatable)"
    )
    site_add.add_argument(
        "--no-typing-preview",
        action="store_true",
        help="never stream visitors' drafts to agents (privacy)",
    )
    site_add.add_argument(
        "--require-identity",
        action="store_true",
        help="refuse identify calls with an id but without a valid hash (docs/widget.md)",
    )
    add_data_option(site_add)
    site_list = site.add_parser("list", help="list sites and their keys")
    add_data_option(site_list)
    site_secret = site.add_parser(
        "secret",
        help="print a site's identity secret (for identify hashes); rotate it, require it",
    )
    site_secret.add_argument("site", help="site key or site id")
    site_secret.add_argument(
        "--rotate", action="store_true", help="replace the secret (old hashes stop verifying)"
    )
    required = site_secret.add_mutually_exclusive_group()
    required.add_argument(
        "--require",
        dest="require",
        action="store_const",
        const=True,
        help="refuse identify calls with an id but without a valid hash",
    )
    required.add_argument(
        "--optional",
        dest="require",
        action="store_const",
        const=False,
        help="accept them, marked unverified (the default)",
    )
    add_data_option(site_secret)

    agent = sub.add_parser("agent", help="manage agents").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    agent_add = agent.add_parser(
        "add", help="add an agent; the password is read from a prompt, or stdin when piped"
    )
    agent_add.add_argument("--site", required=True, help="site key or site id")
    agent_add.add_argument("--email", required=True, help="login email")
    agent_add.add_argument("--name", required=True, help="name shown to visitors")
    agent_add.add_argument("--admin", action="store_true", help="give the admin role")
    agent_add.add_argument("--capacity", type=int, default=5, help="concurrent chats (default 5)")
    agent_add.add_argument(
        "--department", action="append", default=[], help="a department served (repeatable)"
    )
    add_data_option(agent_add)

    from recordings import cli as recordings_cli  # here: it imports this module

    recordings_cli.add_commands(sub)
    from ..reports import cli as reports_cli

    reports_cli.add_commands(sub)
    from archive import cli as archive_cli

    archive_cli.add_commands(sub)
    from ..privacy import cli as privacy_cli

    privacy_cli.add_commands(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # The Redis and database URLs' passwords stay out of every message, log line and traceback.
    protect(getattr(args, "redis", None))
    protect(getattr(args, "database", None))
    install_redaction()
    try:
        if args.command == "serve":
            serve(config_from(args))
        elif args.command == "demo":
            cmd_demo(args)
        elif args.command == "site":
            {"add": cmd_site_add, "list": cmd_site_list, "secret": cmd_site_secret}[args.action](
                args
            )
        elif args.command == "agent":
            cmd_agent_add(args)
        elif args.command == "recordings":
            from recordings import cli as recordings_cli

            recordings_cli.run(args)
        elif args.command == "reports":
            from ..reports import cli as reports_cli

            reports_cli.run(args)
        elif args.command == "archive":
            from archive import cli as archive_cli

            archive_cli.run(args)
        elif args.command == "privacy":
            from ..privacy import cli as privacy_cli

            privacy_cli.run(args)
    except ChatError as exc:
        print(f"chatserver: {scrub(str(exc))}", file=sys.stderr)
        return 2
    except Exception:  # as Python would report it, without the secrets
        print(scrub(traceback.format_exc()), file=sys.stderr, end="")
        return 1
    return 0
