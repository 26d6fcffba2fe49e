"""Extract the console's strings and update its catalogs (``scripts/i18n``).

``babel.cfg`` at the repository's root maps files to Babel's extractors (python,
jinja2, javascript).  Keywords: gettext's (``_``, ``gettext``, ``ngettext``,
``N_``) and the JS module's ``t`` and ``tn`` (``static/i18n.js``).

* ``python -m agent_console.catalogs``: write ``locale/console.pot`` and merge it
  into each ``locale/<lang>/LC_MESSAGES/console.po`` (new strings arrive empty,
  changed ones fuzzy, gone ones obsolete), then list what still needs translating;
* ``--check``: change nothing; exit 1 when a string in the code is missing from the
  template or a catalog, or a catalog has an empty, fuzzy or broken translation.

Locations are kept without line numbers, so moving code does not churn the files.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from .i18n import DOMAIN, LOCALE_DIR, TRANSLATED

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "babel.cfg"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = {**DEFAULT_KEYWORDS, "t": None, "tn": (1, 2)}
# Fixed header dates: re-running the extraction changes the files only when strings change.
_DATE = datetime(2026, 12, 7, tzinfo=UTC)
# Catalan and Spanish as gettext has always had them: one, other ("1 xat", "2 xats").
_PLURALS = (2, "(n != 1)")
_PLACEHOLDER = re.compile(r"%\([a-z_0-9]+\)[sdr]|%%")


def extract() -> Catalog:
    """Every string of the console's code, as a template catalog."""
    with MAPPING.open() as f:
        method_map, options_map = parse_mapping_cfg(f)  # type: ignore[no-untyped-call]
    template = _new()
    found = extract_from_dir(str(ROOT), method_map, options_map, keywords=KEYWORDS)
    for filename, lineno, message, comments, context in found:
        template.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return template


def _new(lang: str | None = None) -> Catalog:
    catalog = Catalog(
        locale=lang,
        domain=DOMAIN,
        project="chatserver console",
        version="",
        copyright_holder="chatserver contributors",
        creation_date=_DATE,
        revision_date=_DATE,
        fuzzy=False,
    )
    if lang is not None:
        catalog._num_plurals, catalog._plural_expr = _PLURALS  # type: ignore[assignment]
    return catalog


def po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, include_lineno=False, width=100, omit_header=False)


def placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text))


def problems(message: Message) -> list[str]:
    """What is wrong with one translated message (empty: nothing)."""
    ids = [str(i) for i in message.id] if isinstance(message.id, (tuple, list)) else [message.id]
    raw = message.string
    strings = [str(s) for s in raw] if isinstance(raw, (tuple, list)) else [str(raw or "")]
    found = []
    if message.fuzzy:
        found.append("fuzzy")
    if not all(strings):
        found.append("untranslated")
    want = placeholders(ids[-1])
    for text in strings:
        if text and placeholders(text) != want and placeholders(text) != placeholders(ids[0]):
            found.append(f"placeholders {placeholders(text)} != {want}")
    return found


def check() -> list[str]:
    """Everything that keeps the catalogs from being complete and current."""
    extracted = {m.id for m in extract() if m.id}
    errors = []
    template = {m.id for m in read(TEMPLATE) if m.id}
    errors += [f"console.pot lacks {mid!r}" for mid in sorted(extracted - template, key=str)]
    errors += [f"console.pot has stale {mid!r}" for mid in sorted(template - extracted, key=str)]
    for lang in TRANSLATED:
        catalog = read(po_path(lang), lang)
        have = {m.id for m in catalog if m.id}
        errors += [f"{lang} lacks {mid!r}" for mid in sorted(extracted - have, key=str)]
        for message in catalog:
            if message.id:
                errors += [f"{lang} {message.id!r}: {p}" for p in problems(message)]
    return errors


def update() -> None:
    template = extract()
    _write(TEMPLATE, template)
    for lang in TRANSLATED:
        path = po_path(lang)
        catalog = read(path, lang) if path.exists() else _new(lang)
        catalog.update(template, update_header_comment=False)
        catalog.obsolete.clear()  # git keeps the history
        _write(path, catalog)


def main(argv: list[str]) -> int:
    if argv and argv != ["--check"]:
        print("usage: scripts/i18n [--check]", file=sys.stderr)
        return 2
    if not argv:
        update()
    errors = check()
    for line in errors:
        print(line)
    if not errors:
        print(f"{DOMAIN}: every string translated into {', '.join(TRANSLATED)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
