"""Mails as text and HTML from Jinja2 templates, in the site's language.

``render(kind, language, **context)`` gives ``(subject, text, html)`` from
``templates/<kind>.txt`` and ``templates/<kind>.html``.  The HTML templates
are autoescaped (every value a visitor or an agent wrote is text there, never
markup); the text templates are not escaped, they are plain text.  The
subject goes through ``message.header`` when the ``Mail`` is made, so a
line break in a name can never start a header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from .quotes import MARKER
from .strings import strings

_TEMPLATES = Path(__file__).parent / "templates"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
KINDS = ("offline", "unanswered", "reply", "transcript")


def one_line(text: str, limit: int = 120) -> str:
    """``text`` on one line (a subject), cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def render(kind: str, language: str, **context: Any) -> tuple[str, str, str]:
    """``(subject, text, html)`` of a mail of ``kind`` (``KINDS``) in ``language``."""
    if kind not in KINDS:
        raise ValueError(f"no mail of kind {kind!r}")
    t = strings(language)
    ctx = {"t": t, "marker": MARKER + t["marker"] + " ----", **context}
    subject = one_line(t[f"{kind}_subject"].format(**context))
    text = _ENV.get_template(f"{kind}.txt").render(ctx)
    html = _ENV.get_template(f"{kind}.html").render({**ctx, "lang": language, "title": subject})
    return subject, text, html
