"""The console's languages: English (the source), Catalan and Spanish.

Strings in templates (``{{ _("...") }}``, ``{% trans %}``), in the Python that makes
text for a page (``_()``; ``N_()`` marks a string translated later, such as a NAV
label) and in the workspace's JS (``t()`` / ``tn()`` in ``static/i18n.js``) are
English msgids in one gettext domain, ``console``.  Their translations live as text
in ``locale/{ca,es}/LC_MESSAGES/console.po`` (the template ``locale/console.pot``);
``scripts/i18n`` re-extracts them with Babel and updates the catalogs.

The ``.po`` files are compiled in memory when this module is imported (Babel reads
and compiles all of them in well under a second), so no ``.mo`` is committed and
none can drift from its ``.po``.

Per request the language is the signed-in agent's choice (``language.py``), else
the best match of ``Accept-Language`` among ours, else English.  ``use`` sets it in
a context variable for the request's task; ``gettext`` / ``ngettext`` (and the
templates, whose i18n extension calls them) read it.  Placeholders are named
(``%(name)s``) so the template's newstyle gettext escapes the values filled in.
"""

from __future__ import annotations

import gettext as _gettext
import io
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from chatserver.types import Agent

if TYPE_CHECKING:
    from chatserver.node import Node

HERE = Path(__file__).parent
LOCALE_DIR = HERE / "locale"
DOMAIN = "console"
DEFAULT = "en"
# Each language by its own name, as the profile page offers them.
LANGUAGES: dict[str, str] = {"en": "English", "ca": "Català", "es": "Español"}
KIND = "language"  # the site document holding an agent's choice (language.py)
TRANSLATED = tuple(lang for lang in LANGUAGES if lang != DEFAULT)


def _load(lang: str) -> tuple[_gettext.NullTranslations, dict[str, Any]]:
    """The compiled catalog for ``lang`` and the JS part of it (msgid -> text, or a
    list of plural forms), for ``static/i18n.js``."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():  # a language being added: English until scripts/i18n runs
        return _gettext.NullTranslations(), {}
    with path.open("rb") as f:
        catalog = read_po(f, domain=DOMAIN)  # no locale: its CLDR data is not needed
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    js: dict[str, Any] = {}
    for message in catalog:
        if not message.id or message.fuzzy or not message.string:
            continue
        if not any(file.endswith(".js") for file, _line in message.locations):
            continue
        if isinstance(message.id, (tuple, list)):
            js[str(message.id[0])] = list(message.string)
        else:
            js[str(message.id)] = message.string
    return _gettext.GNUTranslations(buf), js


_CATALOGS: dict[str, _gettext.NullTranslations] = {DEFAULT: _gettext.NullTranslations()}
_JS: dict[str, dict[str, Any]] = {DEFAULT: {}}
for _lang in TRANSLATED:
    _CATALOGS[_lang], _JS[_lang] = _load(_lang)

_current: ContextVar[str] = ContextVar("console_language", default=DEFAULT)


def supported(lang: object) -> bool:
    return isinstance(lang, str) and lang in LANGUAGES


def from_header(accept_language: str) -> str:
    """The best of our languages for an ``Accept-Language`` header, else English.

    Tags are taken in the order of their weight (``q``); ``ca-ES`` counts as ``ca``.
    """
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language[:512].split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if q > 0 and primary in LANGUAGES:
            ranked.append((-q, index, primary))
    return min(ranked)[2] if ranked else DEFAULT


def pick(chosen: str | None, accept_language: str) -> str:
    """The agent's choice when they made one, else the browser's."""
    return chosen if chosen is not None and supported(chosen) else from_header(accept_language)


async def chosen(node: Node, agent: Agent) -> str | None:
    """The language ``agent`` chose on their profile page, or ``None`` for Automatic."""
    doc = await node.store.get_doc(agent.site_id, KIND, agent.id)
    lang = doc.data.get("lang") if doc else None
    return lang if isinstance(lang, str) and supported(lang) else None


def use(lang: str) -> None:
    """Translate what this request's task renders into ``lang``."""
    _current.set(lang if supported(lang) else DEFAULT)


def current() -> str:
    return _current.get()


def gettext(message: str) -> str:
    return _CATALOGS[_current.get()].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _CATALOGS[_current.get()].ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def js_catalog(lang: str) -> dict[str, Any]:
    """The messages the workspace's JS uses, in ``lang`` (empty for English)."""
    return _JS.get(lang, {})


def js_catalog_json(lang: str) -> Markup:
    """``js_catalog`` as JSON safe inside ``<script type="application/json">`` (``<``,
    ``>``, ``&`` and ``'`` escaped, as Jinja's ``tojson``), serialised once per language."""
    if lang not in _JS_JSON:
        _JS_JSON[lang] = htmlsafe_json_dumps(js_catalog(lang))
    return _JS_JSON[lang]


_JS_JSON: dict[str, Markup] = {}


def catalog(lang: str) -> _gettext.NullTranslations:
    return _CATALOGS[lang]
