"""Privacy: erase everything stored about one visitor (an erasure request).

Two steps, so nothing is erased by a slip: the admin names the person (as for
an export) and sees the visitor records found, with what each holds; only a
second POST that repeats those ids and the word ERASE erases them
(``chatserver/privacy/erase.py``; docs/privacy.md, "Answering an erasure
request").  The audit trail gets ``visitor.erase`` with the counts.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatserver.privacy.erase import erase_live
from chatserver.privacy.export import Request as Asked
from chatserver.privacy.export import Sources, find
from chatserver.types import Role, Visitor

from ..auth import guard
from ..forms import Form
from ..i18n import _
from .common import GET_POST, done, form_data, node_of, own_site, page
from .privacy import MAX_FIELD

CONFIRM_WORD = "ERASE"
MAX_RECORDS = 50  # visitor records one request may erase


async def _summaries(request: Request, visitors: list[Visitor]) -> list[dict[str, object]]:
    store = node_of(request).store
    out = []
    for v in visitors:
        convs = await store.visitor_conversations(v.id, limit=1000)
        out.append({"visitor": v, "conversations": len(convs)})
    return out


@guard(Role.ADMIN)
async def erase(request: Request) -> Response:
    site = await own_site(request)
    node = node_of(request)
    if request.method == "GET":
        blank = {"section": "privacy", "form": Form(), "found": None}
        return page(request, "admin/privacy_erase.html", blank)
    data = dict(await form_data(request))
    form = Form(values={k: str(data.get(k, "")).strip() for k in ("visitor", "user_id", "email")})
    form.values["keep_facts"] = data.get("keep_facts") == "on"
    asked = Asked(*(str(form.values[k])[:MAX_FIELD] for k in ("visitor", "user_id", "email")))
    context: dict[str, object] = {"section": "privacy", "form": form, "found": None}
    if not asked:
        form.errors["visitor"] = _("Give a visitor id, a customer id or an e-mail address.")
        return page(request, "admin/privacy_erase.html", context, 422)
    found = (await find(Sources.of(node), site.id, asked))[:MAX_RECORDS]
    if not found:
        form.errors["visitor"] = _("No visitor of this site matches.")
        return page(request, "admin/privacy_erase.html", context, 422)
    ids = sorted(v.id for v in found)
    if data.get("step") != "erase":  # the first step: show what would go
        context["found"] = await _summaries(request, found)
        context["ids"] = ",".join(ids)
        return page(request, "admin/privacy_erase.html", context)
    if data.get("ids") != ",".join(ids) or str(data.get("confirm", "")).strip() != CONFIRM_WORD:
        form.errors["confirm"] = _("Type %(confirm_word)s to confirm, for the records listed.") % {
            "confirm_word": CONFIRM_WORD
        }
        context["found"] = await _summaries(request, found)
        context["ids"] = ",".join(ids)
        return page(request, "admin/privacy_erase.html", context, 422)
    keep = bool(form.values["keep_facts"])
    result = await erase_live(node, site.id, found, keep_facts=keep)
    counts = result.counts()
    await node.audit.from_request(
        request,
        request.state.login.agent,
        "visitor.erase",
        ",".join(ids),
        {"keep_facts": keep, **counts},
    )
    said = ", ".join(f"{n} {_(what.replace('_', ' '))}" for what, n in counts.items() if n)
    return done(
        request,
        "/console/admin/privacy",
        _("Erased: %(what)s.") % {"what": said or _("nothing was stored")},
    )


routes: list[BaseRoute] = [
    Route("/admin/privacy/erase", erase, methods=GET_POST, name="admin_privacy_erase"),
]
