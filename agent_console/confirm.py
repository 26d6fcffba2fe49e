"""Confirmation before a destructive action (delete, remove, revoke, disable, erase).

The action's form carries ``data-confirm`` (the question) and a hidden
``confirm=ask``.  With JavaScript, ``static/confirm.js`` asks in a ``<dialog>`` and,
when the admin confirms, sends the form with ``confirm=yes``; cancelled, nothing is
sent.  Without JavaScript the form arrives with ``confirm=ask`` and the endpoint
answers ``confirmation_page``: the question, the same form with ``confirm=yes``, and a
way back.  A request without the field (API clients, scripts) acts at once, as before.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .web import render

ASK = "ask"


async def confirmation_page(
    request: Request, question: str, action: str, back: str
) -> Response | None:
    """The confirmation page when the form asks for one (``confirm=ask``), else ``None``.

    ``action`` labels the confirming button ("Delete"); ``back`` is where "Cancel"
    goes.  The page re-posts every field of the form but ``csrf`` and ``confirm``.
    """
    form = await request.form()
    if form.get("confirm") != ASK:
        return None
    fields = [
        (key, value)
        for key, value in form.multi_items()
        if key not in ("csrf", "confirm") and isinstance(value, str)
    ]
    request.state.no_audit = True  # nothing changed yet
    return render(
        request,
        "confirm.html",
        {
            "question": question,
            "action": action,
            "target": request.url.path,
            "fields": fields,
            "back": back,
        },
    )
