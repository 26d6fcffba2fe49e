"""Where the widget's built bundles are: ``chatserver/widget_build/``.

``widget/scripts/build.mjs`` (``npm run build``, run by ``scripts/setup``)
writes the loader, the content-hashed bundles, ``manifest.json`` and the
third-party notices there, inside the package, so that a wheel carries them
and an installed server finds them. The folder is not in git.
"""

from __future__ import annotations

from pathlib import Path

WIDGET_BUILD = Path(__file__).resolve().parent / "widget_build"
