"""#21: the console's catalogs (``agent_console/locale``) are complete and current.

The extraction runs here as ``scripts/i18n`` runs it: a string added to a template,
the Python or the workspace's JS without a Catalan and a Spanish translation fails
CI, as does a translation that drops or renames a placeholder."""

from __future__ import annotations

import re

from babel.messages.catalog import Message

from agent_console import catalogs, i18n


def test_every_string_is_extracted_and_translated_with_its_placeholders() -> None:
    assert catalogs.check() == []


def test_the_check_finds_an_untranslated_a_fuzzy_or_a_broken_message() -> None:
    assert catalogs.problems(Message("Saved %(name)s.", "Desat %(name)s.")) == []
    assert catalogs.problems(Message("Saved %(name)s.", "")) == ["untranslated"]
    assert catalogs.problems(Message("Saved.", "Desat.", flags=["fuzzy"])) == ["fuzzy"]
    assert catalogs.problems(Message("Saved %(name)s.", "Desat %(nom)s.")) != []
    assert catalogs.problems(Message("Saved %(name)s.", "Desat.")) != []
    plural = Message(("%(num)s key", "%(num)s keys"), ("%(num)s clau", "claus"))
    assert catalogs.problems(plural) != []
    plural = Message(("%(num)s key", "%(num)s keys"), ("%(num)s clau", "%(num)s claus"))
    assert catalogs.problems(plural) == []


def test_catalogs_translate_and_pluralise() -> None:
    try:
        for lang, signed_out, keys in (
            ("ca", "Tanca la sessió", "2 claus (com a màxim 5)."),
            ("es", "Cerrar sesión", "2 claves (como máximo 5)."),
            ("en", "Sign out", "2 keys (at most 5)."),
        ):
            i18n.use(lang)
            assert i18n.gettext("Sign out") == signed_out
            one, many = "%(num)s key (at most %(max)s).", "%(num)s keys (at most %(max)s)."
            plural = i18n.ngettext(one, many, 2)
            assert plural % {"num": 2, "max": 5} == keys
        i18n.use("xx")
        assert i18n.current() == "en"
    finally:
        i18n.use("en")  # this test's context is the next sync test's


def test_every_t_call_of_the_workspace_is_extracted() -> None:
    """Babel's JavaScript extractor skips a ``t()`` nested in another call's
    arguments or inside a template literal's ``${}``: each must be a call of its own."""
    template = catalogs.read(catalogs.TEMPLATE)
    extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    called = set()
    for path in (catalogs.ROOT / "agent_console" / "static").rglob("*.js"):
        if path.name == "i18n.js":
            continue
        for found in re.finditer(r'(?<![\w.])tn?\(\s*"((?:[^"\\]|\\.)*)"', path.read_text()):
            called.add(found.group(1).replace('\\"', '"'))
    assert len(called) > 150
    assert called - extracted == set()
