"""The ``chatserver`` command (``main``), in four modules.

``main.py`` the parser of every subcommand and ``main``; ``options.py`` the
options (every one with help text and a ``CHATSERVER_*`` environment twin;
the command line wins over the environment); ``serve.py`` ``serve`` and
``demo``; ``admin.py`` ``site ...``, ``agent add`` and the demo's site and
logins.
"""

from .admin import ensure_demo
from .main import main, parser
from .options import size
from .serve import serve

__all__ = ["ensure_demo", "main", "parser", "serve", "size"]
