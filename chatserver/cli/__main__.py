"""``python -m chatserver.cli``: the ``chatserver`` command."""

import sys

from .main import main

sys.exit(main())
