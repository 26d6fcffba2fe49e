"""The widget build's bundles as console pages link them (its ``manifest.json``).

``scripts/build.mjs`` writes the manifest: which content-hashed file holds
the chat, co-browsing, the recorder and the replay view.  Pages link the hashed file
(cached for a year); without a manifest (an old build) the stable
``/widget/replay.js`` is used.
"""

from __future__ import annotations

import json
from pathlib import Path

from chatserver.bundles import WIDGET_BUILD

_cache: dict[str, tuple[float, dict[str, str]]] = {}


def _manifest(build: Path) -> dict[str, str]:
    path = build / "manifest.json"
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return {}
    cached = _cache.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    names = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
    _cache[str(path)] = (stamp, names)
    return names


def widget_asset(name: str, build: Path = WIDGET_BUILD) -> str:
    """The URL path of bundle ``name`` (``chat``, ``cobrowse``, ``recorder``, ``replay``,
    ``preview``)."""
    found = _manifest(build).get(name)
    if found and "/" not in found:
        return f"/widget/{found}"
    return f"/widget/{name}.js"
