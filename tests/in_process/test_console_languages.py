"""#21: the console in English, Catalan and Spanish (``agent_console/i18n.py``,
``language.py``): the page follows ``Accept-Language`` (the login page too), an
agent's saved choice beats it, ``<html lang>`` follows, and values put into a
translated string are still escaped."""

from __future__ import annotations

import html
import json
import re

import httpx
import pytest

from agent_console import i18n
from chatserver.types import Role

from ..conftest import console_login, csrf_of
from ..node import Node

pytestmark = pytest.mark.anyio
ORIGIN = {"Origin": "http://127.0.0.1"}
SIGN_OUT = {"en": "Sign out", "ca": "Tanca la sessió", "es": "Cerrar sesión"}


def html_lang(page: str) -> str:
    found = re.search(r'<html lang="([a-z]+)"', page)
    assert found, "the page names its language"
    return found.group(1)


def language_of(page: str) -> str:
    """Which language's "Sign out" the page shows (exactly one)."""
    shown = [lang for lang, text in SIGN_OUT.items() if f">{text}</button>" in page]
    assert len(shown) == 1, shown
    return shown[0]


async def profile(http: httpx.AsyncClient, accept: str = "") -> str:
    headers = {"Accept-Language": accept} if accept else {}
    r = await http.get("/console/profile", headers=headers)
    assert r.status_code == 200
    return r.text


async def choose(http: httpx.AsyncClient, value: str) -> httpx.Response:
    csrf = csrf_of(await profile(http))
    return await http.post(
        "/console/profile/language", data={"csrf": csrf, "language": value}, headers=ORIGIN
    )


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        ("ca", "ca"),
        ("es-ES,es;q=0.9,en;q=0.8", "es"),
        ("fr", "en"),
        ("fr-FR,fr;q=0.9,ca;q=0.5", "ca"),
        ("", "en"),
        ("en;q=0.2,es;q=0.7", "es"),
        ("ca;q=0", "en"),
    ],
)
def test_accept_language_picks_the_best_of_ours(accept: str, lang: str) -> None:
    assert i18n.from_header(accept) == lang


async def test_pages_follow_the_browser_and_the_agents_choice(node: Node) -> None:
    shop = await node.seed(agents=2)
    first, second = shop.agents
    async with node.http() as http, node.http() as other:
        login = (await http.get("/console/login", headers={"Accept-Language": "es"})).text
        assert html_lang(login) == "es" and "Contraseña" in login
        assert "Password" in (await http.get("/console/login")).text
        assert (await console_login(http, first)).status_code == 303
        assert (await console_login(other, second)).status_code == 303
        for accept, lang in (("ca", "ca"), ("es", "es"), ("fr", "en"), ("", "en")):
            page = await profile(http, accept)
            assert html_lang(page) == lang and language_of(page) == lang, accept

        r = await choose(http, "ca")
        assert r.status_code == 303
        page = await profile(http, "es")  # the choice beats the header
        assert html_lang(page) == "ca" and language_of(page) == "ca"
        assert "S'ha desat la teva llengua." in html.unescape(page)  # in the new language
        assert re.search(r'<option value="ca" lang="ca" selected>Català</option>', page)
        workspace = (await http.get("/console/", headers={"Accept-Language": "en"})).text
        assert html_lang(workspace) == "ca"
        # The other agent's pages still follow their browser.
        assert html_lang(await profile(other, "es")) == "es"

        assert (await choose(http, "klingon")).status_code == 303  # refused, unchanged
        page = await profile(http, "es")
        assert html_lang(page) == "ca" and "Tria una de les llengües de la llista." in page

        assert (await choose(http, "auto")).status_code == 303  # back to the browser
        assert html_lang(await profile(http, "es")) == "es"
        assert html_lang(await profile(http)) == "en"


async def test_the_choice_needs_the_csrf_token(node: Node) -> None:
    shop = await node.seed(agents=1)
    async with node.http() as http:
        await console_login(http, next(iter(shop.agents)))
        r = await http.post("/console/profile/language", data={"language": "es"}, headers=ORIGIN)
        assert r.status_code == 403
        assert html_lang(await profile(http)) == "en"


async def test_the_workspace_carries_its_catalog_as_data(node: Node) -> None:
    shop = await node.seed(agents=1)
    async with node.http() as http:
        await console_login(http, next(iter(shop.agents)))
        page = (await http.get("/console/", headers={"Accept-Language": "es"})).text
        block = re.search(
            r'<script type="application/json" id="console-i18n">(.*?)</script>', page, re.S
        )
        assert block, "the page carries the JS messages as a data block"
        messages = json.loads(html.unescape(block.group(1)))
        assert messages["Take chat"] == "Tomar el chat"  # a string of the workspace's JS
        assert messages["%(names)s is typing…"] == [  # plurals as their forms
            "%(names)s está escribiendo…",
            "%(names)s están escribiendo…",
        ]
        assert "Sign out" not in messages  # only the JS's strings, not the templates'
        english = (await http.get("/console/")).text
        assert '<script type="application/json" id="console-i18n">{}</script>' in english


async def test_values_in_translated_strings_are_escaped(node: Node) -> None:
    """A name or a search typed by someone is a value filled into the translated
    string (newstyle gettext), so the page shows it as text in every language."""
    shop = await node.seed(agents=1, roles={0: Role.ADMIN})
    bold = await node.store.create_agent(
        shop.site.id, "bold@test.shop", "<b>Ann</b>", "x", Role.AGENT, 2, ()
    )
    await node.parts.api_keys.create(shop.site.id, "<b>CRM</b>")
    async with node.http() as http:
        await console_login(http, next(iter(shop.agents)))
        for lang, disable, nothing in (
            ("ca", "Desactiva &lt;b&gt;Ann&lt;/b&gt;", "Res no coincideix amb «&lt;b&gt;x"),
            ("es", "Desactivar a &lt;b&gt;Ann&lt;/b&gt;", "Nada coincide con «&lt;b&gt;x"),
            ("en", "Disable &lt;b&gt;Ann&lt;/b&gt;", "Nothing matches “&lt;b&gt;x"),
        ):
            headers = {"Accept-Language": lang}
            page = (await http.get(f"/console/admin/agents/{bold.id}", headers=headers)).text
            assert disable in page and "<b>Ann</b>" not in page, lang
            q = {"q": "<b>x</b>"}
            found = await http.get("/console/admin/canned", params=q, headers=headers)
            assert nothing in found.text and "<b>x</b>" not in found.text, lang
            keys = (await http.get("/console/admin/api-keys", headers=headers)).text
            assert "&lt;b&gt;CRM&lt;/b&gt;?" in keys and "<b>CRM</b>" not in keys, lang


async def test_reports_charts_and_tables_follow_the_language(node: Node) -> None:
    """The reports page's labels, its charts (chatserver/reports/svg.py) and its
    tables' headers are translated; a bad filter is said in the page's language,
    and in English to the JSON API."""
    shop = await node.seed(agents=1, roles={0: Role.ADMIN})
    async with node.http() as http:
        await console_login(http, next(iter(shop.agents)))
        page = (await http.get("/console/reports", headers={"Accept-Language": "es"})).text
        assert "<title>Conversaciones por día</title>" in page
        assert '<th scope="col">iniciadas</th>' in page
        assert ">Informes</h1>" in page
        bad = {"since": "2026-02-01", "until": "2026-01-01"}
        page = await http.get("/console/reports", params=bad, headers={"Accept-Language": "ca"})
        assert page.status_code == 400 and "since no pot ser posterior a until" in page.text
        api = await http.get(
            "/console/api/reports/daily.json", params=bad, headers={"Accept-Language": "ca"}
        )
        assert "since must not be after until" in api.text
