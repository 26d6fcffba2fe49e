"""The admin's triggers pages: list, edit, order, export and import rules; business hours.

Rules are site documents of kind ``trigger`` (``chatserver.proactive``); this
module turns the form into the rule format of ``chatserver.proactive.rules``,
which validates it: a refused rule comes back with its form and one message
per bad field.  Every write is one call of ``chatserver.proactive.admin``,
which also tells the trigger engine of every process at once
(``control.triggers_changed``: a control event); a process that missed it
reads the rules again within ``RULES_TTL``.  This module keeps the forms,
the messages and the rendering.

Pages (admin role):

* ``GET /console/triggers``: the rules in evaluation order with their
  counters (times fired, chats that followed), and the import form;
* ``GET|POST /console/triggers/new`` and ``/console/triggers/{id}``: the form;
* ``POST /console/triggers/{id}/toggle|up|down|delete``;
* ``GET /console/triggers/export``: every rule as a JSON file;
  ``POST /console/triggers/import``: a file checked rule by rule, refused
  whole when any rule is bad;
* ``GET|POST /console/triggers/hours``: the site's time zone and opening hours.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import available_timezones

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from chatserver.proactive import COUNTERS, TRIGGER_KIND, admin
from chatserver.proactive.hours import (
    DAYS,
    HOURS_DOC,
    BusinessHours,
    HoursError,
    open_at,
    parse_hours,
    zone,
)
from chatserver.proactive.rules import (
    DEVICES,
    KINDS,
    MAX_ACTIONS,
    MAX_CONDITIONS,
    MAX_RULES,
    SHOP,
    Rule,
    RuleContext,
    RuleError,
    parse_rule,
)
from chatserver.types import Doc, Role, Site, new_id

from .auth import guard
from .confirm import confirmation_page
from .i18n import N_, _
from .web import render, security_headers

if TYPE_CHECKING:
    from chatserver.node import Node

EXPORT_FORMAT = "chatserver.triggers"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 1024 * 1024
SPARE_ROWS = 2  # empty condition and action rows under the filled ones

KIND_LABELS = {
    "url": N_("Page URL"),
    "title": N_("Page title"),
    "referrer": N_("Referrer"),
    "time_on_page": N_("Seconds on the current page"),
    "time_on_site": N_("Seconds on the site (this visit)"),
    "pages": N_("Pages viewed this visit"),
    "visits": N_("Number of visits"),
    "attribute": N_("Custom attribute"),
    "device": N_("Device type"),
    "language": N_("Language"),
    "business_hours": N_("Within business hours"),
    "agent_online": N_("Agent online in department"),
    "has_chat": N_("Has an open chat"),
    "signal": N_("Recording signal"),
}
OP_LABELS = {
    "contains": N_("contains"),
    "not_contains": N_("does not contain"),
    "equals": N_("equals"),
    "not_equals": N_("does not equal"),
    "starts_with": N_("starts with"),
    "regex": N_("matches regex"),
    ">=": N_("at least"),
    ">": N_("more than"),
    "<=": N_("at most"),
    "<": N_("less than"),
    "==": N_("exactly"),
    "!=": N_("not"),
    "is": N_("is"),
    "is_not": N_("is not"),
    "exists": N_("is set"),
    "not_exists": N_("is not set"),
}
ACTION_LABELS = {
    "message": N_("Send a message"),
    "open": N_("Open the chat window"),
    "route": N_("Route to department"),
    "tag": N_("Add a tag"),
}
FREQUENCY_LABELS = {
    "visit": N_("Once per visit"),
    "visitor": N_("Once per visitor"),
    "always": N_("Every time (once per page view), with a minimum gap"),
}
# The business hours' days (chatserver/proactive/hours.py DAYS), for extraction.
_DAY_NAMES = (
    N_("monday"),
    N_("tuesday"),
    N_("wednesday"),
    N_("thursday"),
    N_("friday"),
    N_("saturday"),
    N_("sunday"),
)
_BOOL_KINDS = ("business_hours", "has_chat")


def _node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


async def _site(request: Request) -> Site:
    site = await _node(request).store.get_site(request.state.login.agent.site_id)
    assert site is not None, "an agent's site exists"
    return site


async def _context(request: Request, site: Site) -> tuple[RuleContext, dict[str, str]]:
    agents = {
        a.id: a.name
        for a in await _node(request).store.list_agents(site.id)
        if not a.disabled and a.role is not Role.ANALYST
    }
    return RuleContext(frozenset(site.departments), agents), agents


async def _rules(request: Request, site: Site) -> list[tuple[Doc, Rule | None, str]]:
    """The site's rule documents in evaluation order, parsed (or why not)."""
    found: list[tuple[Doc, Rule | None, str]] = []
    for doc in await _node(request).store.list_docs(site.id, TRIGGER_KIND):
        try:
            found.append((doc, parse_rule(doc.data, None, doc.id), ""))
        except RuleError as exc:
            found.append((doc, None, str(exc)))
    found.sort(key=lambda item: (item[0].data.get("order", 0), item[0].id))
    return found


# -- form <-> rule ------------------------------------------------------------------


def _number(text: str) -> Any:
    """A form value as a number when it spells one (else the text, refused later)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def _value(kind: str, op: str, text: str) -> Any:
    text = text.strip()
    if kind in ("time_on_page", "time_on_site", "visits", "pages"):
        return _number(text)
    if kind in _BOOL_KINDS:
        return {"yes": True, "true": True, "no": False, "false": False}.get(text.lower(), text)
    if kind == "attribute":
        if op in ("exists", "not_exists"):
            return None
        if op in (">=", ">", "<=", "<", "==", "!="):
            return _number(text)
        if op in ("equals", "not_equals"):
            if len(text) >= 2 and text[0] == text[-1] == '"':
                return text[1:-1]  # "42": the text 42, not the number
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            number = _number(text)
            return number if not isinstance(number, str) else text
    return text


def _shown(value: Any, kind: str, op: str) -> str:
    """A stored value as the form shows it (``_value`` reads it back the same)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        if kind in _BOOL_KINDS:
            return "yes" if value else "no"
        return "true" if value else "false"
    if not isinstance(value, str) or kind != "attribute" or op not in ("equals", "not_equals"):
        return str(value)
    # A text that would read back as a boolean or a number is quoted.
    spelled = value.lower() in ("true", "false") or not isinstance(_number(value), str)
    return f'"{value}"' if spelled else value


def form_to_rule(form: FormData) -> dict[str, Any]:
    """The submitted form as a rule in the stored format (not yet validated)."""

    def text(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    conditions = []
    for i in range(MAX_CONDITIONS + SPARE_ROWS):
        kind = text(f"c{i}_kind")
        if not kind:
            continue
        op = text(f"c{i}_op")
        cond: dict[str, Any] = {"kind": kind, "op": op}
        if kind == "attribute":
            cond["path"] = text(f"c{i}_path").strip()
        value = _value(kind, op, text(f"c{i}_value"))
        if value is not None:
            cond["value"] = value
        conditions.append(cond)
    actions = []
    for i in range(MAX_ACTIONS + SPARE_ROWS):
        kind = text(f"a{i}_type")
        if not kind:
            continue
        action: dict[str, Any] = {"type": kind}
        if kind == "message":
            action["body"] = text(f"a{i}_body")
            action["as"] = text(f"a{i}_as") or SHOP
        elif kind == "route":
            action["dept"] = text(f"a{i}_dept")
        elif kind == "tag":
            action["tag"] = text(f"a{i}_tag")
        actions.append(action)
    gap_text = text("gap").strip() or "0"
    return {
        "name": text("name"),
        "enabled": form.get("enabled") == "on",
        "match": text("match") or "all",
        "frequency": text("frequency") or "visit",
        "gap": int(gap_text) if gap_text.isdigit() else gap_text,
        "stop": form.get("stop") == "on",
        "conditions": conditions,
        "actions": actions,
    }


def _rows(data: dict[str, Any]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Condition and action rows for the template, with spare empty ones."""
    conditions = []
    for cond in data.get("conditions") or []:
        if isinstance(cond, dict):
            kind, op = str(cond.get("kind", "")), str(cond.get("op", ""))
            conditions.append(
                {
                    "kind": kind,
                    "op": op,
                    "path": str(cond.get("path", "")),
                    "value": _shown(cond.get("value"), kind, op),
                }
            )
    conditions += [{"kind": "", "op": "", "path": "", "value": ""}] * SPARE_ROWS
    actions = []
    for act in data.get("actions") or []:
        if isinstance(act, dict):
            actions.append(
                {
                    "type": str(act.get("type", "")),
                    "body": str(act.get("body", "")),
                    "as": str(act.get("as", SHOP)),
                    "dept": str(act.get("dept", "")),
                    "tag": str(act.get("tag", "")),
                }
            )
    actions += [{"type": "", "body": "", "as": SHOP, "dept": "", "tag": ""}] * SPARE_ROWS
    return conditions[: MAX_CONDITIONS + SPARE_ROWS], actions[: MAX_ACTIONS + SPARE_ROWS]


def _summary(rule: Rule) -> str:
    """One line saying what a rule checks, for the list."""
    parts = []
    for c in rule.conditions:
        subject = _(KIND_LABELS[c.kind]) if c.kind in KIND_LABELS else c.kind
        if c.path:
            subject = ".".join(c.path)
        value = "" if c.op in ("exists", "not_exists") else f" {_shown(c.value, c.kind, c.op)}"
        op = _(OP_LABELS[c.op]) if c.op in OP_LABELS else c.op
        parts.append(f"{subject} {op}{value}".strip())
    joiner = _(" and ") if rule.match.value == "all" else _(" or ")
    return joiner.join(parts)


async def _form_page(
    request: Request,
    site: Site,
    data: dict[str, Any],
    rule_id: str | None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    _ctx, agents = await _context(request, site)
    conditions, actions = _rows(data)
    return render(
        request,
        "trigger_form.html",
        {
            "site": site,
            "rule_id": rule_id,
            "data": data,
            "conditions": conditions,
            "actions": actions,
            "errors": errors or {},
            "agents": agents,
            "kinds": KINDS,
            "kind_labels": KIND_LABELS,
            "op_labels": OP_LABELS,
            "action_labels": ACTION_LABELS,
            "frequency_labels": FREQUENCY_LABELS,
            "devices": DEVICES,
        },
        status_code=status_code,
    )


# -- pages -------------------------------------------------------------------------


@guard(Role.ADMIN)
async def index(request: Request) -> Response:
    return await _list_page(request)


async def _list_page(
    request: Request,
    import_errors: list[str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    site = await _site(request)
    counters = await _node(request).store.counters(site.id, COUNTERS)
    rows = []
    for doc, rule, problem in await _rules(request, site):
        rows.append(
            {
                "id": doc.id,
                "name": rule.name if rule else str(doc.data.get("name", doc.id)),
                "enabled": rule.enabled if rule else False,
                "summary": _summary(rule) if rule else problem,
                "frequency": FREQUENCY_LABELS[rule.frequency.value] if rule else "",
                "fired": counters.get(f"{doc.id}.fired", 0),
                "chats": counters.get(f"{doc.id}.chats", 0),
                "stop": rule.stop if rule else False,
            }
        )
    hours = await _hours(request, site)
    return render(
        request,
        "triggers.html",
        {
            "site": site,
            "rows": rows,
            "import_errors": import_errors or [],
            "notice": notice,
            "hours": hours,
            "open_now": open_at(hours, time.time()),
            "max_rules": MAX_RULES,
        },
        status_code=status_code,
    )


@guard(Role.ADMIN)
async def new(request: Request) -> Response:
    site = await _site(request)
    if request.method == "GET":
        blank = {"name": "", "enabled": True, "frequency": "visit", "gap": 600, "match": "all"}
        return await _form_page(request, site, blank, None)
    form = await request.form()
    data = form_to_rule(form)
    if "more" in form:  # no JavaScript: the form again, with more empty rows
        return await _form_page(request, site, data, None)
    existing = await _rules(request, site)
    if len(existing) >= MAX_RULES:
        errors = {"rule": _("a site has at most %(n)s rules") % {"n": MAX_RULES}}
        return await _form_page(request, site, data, None, errors, 400)
    ctx, _agents = await _context(request, site)
    rule_id = new_id("t")
    data["order"] = max((d.data.get("order", 0) for d, _rule, _err in existing), default=0) + 1
    try:
        rule = parse_rule(data, ctx, rule_id)
    except RuleError as exc:
        return await _form_page(request, site, data, None, exc.errors, 400)
    await admin.save_rule(_node(request), site.id, rule)
    return RedirectResponse("/console/triggers", status_code=303)


@guard(Role.ADMIN)
async def edit(request: Request) -> Response:
    site = await _site(request)
    rule_id = request.path_params["rule_id"]
    store = _node(request).store
    doc = await store.get_doc(site.id, TRIGGER_KIND, rule_id)
    if doc is None:
        return render(request, "error.html", {"message": _("No such trigger.")}, status_code=404)
    if request.method == "GET":
        return await _form_page(request, site, doc.data, rule_id)
    form = await request.form()
    data = form_to_rule(form)
    if "more" in form:
        return await _form_page(request, site, data, rule_id)
    data["order"] = doc.data.get("order", 0)
    ctx, _agents = await _context(request, site)
    try:
        rule = parse_rule(data, ctx, rule_id)
    except RuleError as exc:
        return await _form_page(request, site, data, rule_id, exc.errors, 400)
    await admin.save_rule(_node(request), site.id, rule)
    return RedirectResponse("/console/triggers", status_code=303)


@guard(Role.ADMIN)
async def toggle(request: Request) -> Response:
    site = await _site(request)
    await admin.toggle_rule(_node(request), site.id, request.path_params["rule_id"])
    return RedirectResponse("/console/triggers", status_code=303)


@guard(Role.ADMIN)
async def move(request: Request) -> Response:
    """Move a rule one place up or down the evaluation order."""
    if request.path_params["direction"] not in ("up", "down"):
        return render(request, "error.html", {"message": _("No such page.")}, status_code=404)
    site = await _site(request)
    docs = [doc for doc, _rule, _err in await _rules(request, site)]
    ids = [d.id for d in docs]
    rule_id = request.path_params["rule_id"]
    if rule_id in ids:
        i = ids.index(rule_id)
        j = i - 1 if request.path_params["direction"] == "up" else i + 1
        if 0 <= j < len(docs):
            docs[i], docs[j] = docs[j], docs[i]
            await admin.reorder(_node(request), site.id, docs)
    return RedirectResponse("/console/triggers", status_code=303)


@guard(Role.ADMIN)
async def delete(request: Request) -> Response:
    site = await _site(request)
    question = _("Delete this trigger?")
    if ask := await confirmation_page(request, question, _("Delete"), "/console/triggers"):
        return ask
    await admin.delete_rule(_node(request), site.id, request.path_params["rule_id"])
    return RedirectResponse("/console/triggers", status_code=303)


@guard(Role.ADMIN)
async def export(request: Request) -> Response:
    site = await _site(request)
    rules = []
    for doc, rule, _err in await _rules(request, site):
        rules.append({"id": doc.id, **(rule.to_json() if rule else doc.data)})
    body = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "site": site.name,
        "exported_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "triggers": rules,
    }
    response = Response(
        json.dumps(body, indent=2, ensure_ascii=False) + "\n",
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="triggers.json"'},
    )
    return security_headers(response)


def read_import(raw: bytes, ctx: RuleContext) -> tuple[list[Rule], list[str]]:
    """Every rule of an export file, or the list of what is wrong with it."""
    if len(raw) > MAX_IMPORT_BYTES:
        return [], [_("the file is larger than %(n)s KB") % {"n": MAX_IMPORT_BYTES // 1024}]
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [], [_("not a JSON file: %(error)s") % {"error": exc}]
    if isinstance(body, dict) and body.get("format") == EXPORT_FORMAT:
        if body.get("version") != EXPORT_VERSION:
            return [], [
                _("unknown version %(version)r (this server reads 1)")
                % {"version": body.get("version")}
            ]
        items = body.get("triggers")
    elif isinstance(body, list):
        items = body  # a bare list of rules
    else:
        return [], [
            _('expected an export of chatserver triggers ("format": "%(format)s")')
            % {"format": EXPORT_FORMAT}
        ]
    if not isinstance(items, list):
        return [], [_("'triggers' must be a list of rules")]
    if len(items) > MAX_RULES:
        return [], [
            _("%(n)s rules: a site has at most %(max)s") % {"n": len(items), "max": MAX_RULES}
        ]
    rules: list[Rule] = []
    errors: list[str] = []
    for n, item in enumerate(items, 1):
        name = item.get("name") if isinstance(item, dict) else None
        label = _("rule %(n)s") % {"n": n} + (
            f" ({name!r})" if isinstance(name, str) and name else ""
        )
        data = {k: v for k, v in item.items() if k != "id"} if isinstance(item, dict) else item
        try:
            rules.append(parse_rule(data, ctx, ""))
        except RuleError as exc:
            errors.extend(f"{label}: {where}: {why}" for where, why in exc.errors.items())
    return rules, errors


@guard(Role.ADMIN)
async def import_rules(request: Request) -> Response:
    site = await _site(request)
    form = await request.form()
    upload = form.get("file")
    raw = b""
    if isinstance(upload, UploadFile):
        raw = await upload.read(MAX_IMPORT_BYTES + 1)
    if not raw.strip():
        pasted = form.get("json")
        raw = pasted.encode() if isinstance(pasted, str) else b""
    if not raw.strip():
        return await _list_page(request, [_("choose a file (or paste its JSON)")], status_code=400)
    ctx, _agents = await _context(request, site)
    rules, errors = read_import(raw, ctx)
    replace = form.get("mode") == "replace"
    existing = await _rules(request, site)
    if not errors and not replace and len(existing) + len(rules) > MAX_RULES:
        errors = [
            _("%(n)s rules and %(more)s more: a site has at most %(max)s")
            % {"n": len(existing), "more": len(rules), "max": MAX_RULES}
        ]
    if errors:
        return await _list_page(request, [_("Nothing was imported."), *errors], status_code=400)
    await admin.import_rules(_node(request), site.id, rules, replace)
    return await _list_page(request, notice=_("Imported %(n)s rules.") % {"n": len(rules)})


async def _hours(request: Request, site: Site) -> BusinessHours | None:
    doc = await _node(request).store.get_doc(site.id, *HOURS_DOC)
    if doc is None:
        return None
    try:
        return BusinessHours.from_json(doc.data)
    except HoursError:
        return None


@guard(Role.ADMIN)
async def hours(request: Request) -> Response:
    site = await _site(request)
    current = await _hours(request, site)
    errors: dict[str, str] = {}
    notice = ""
    status = 200
    timezone = current.timezone if current else "UTC"
    days = [current.describe(i) if current else "" for i in range(7)]
    if request.method == "POST":
        form = await request.form()
        if form.get("clear") is not None:
            await admin.clear_hours(_node(request), site.id)
            current, notice = None, _("Cleared: the site counts as open all the time.")
            timezone, days = "UTC", [""] * 7
        else:
            timezone = str(form.get("timezone") or "")
            days = [str(form.get(day) or "") for day in DAYS]
            try:
                current = parse_hours(timezone, days)
            except HoursError as exc:
                errors, status = exc.errors, 400
            else:
                await admin.save_hours(_node(request), site.id, current)
                notice = "Saved."
                days = [current.describe(i) for i in range(7)]
    now = time.time()
    local = ""
    if current is not None:
        local = datetime.fromtimestamp(now, zone(current.timezone)).strftime("%A %H:%M")
    return render(
        request,
        "trigger_hours.html",
        {
            "site": site,
            "timezone": timezone,
            "days": list(zip(DAYS, days, strict=True)),
            "errors": errors,
            "notice": notice,
            "configured": current is not None,
            "open_now": open_at(current, now),
            "local": local,
            "zones": sorted(available_timezones()),
        },
        status_code=status,
    )


routes: list[BaseRoute] = [
    Route("/triggers", index, name="triggers"),
    Route("/triggers/new", new, methods=["GET", "POST"], name="trigger_new"),
    Route("/triggers/export", export, name="triggers_export"),
    Route("/triggers/import", import_rules, methods=["POST"], name="triggers_import"),
    Route("/triggers/hours", hours, methods=["GET", "POST"], name="trigger_hours"),
    Route("/triggers/{rule_id}", edit, methods=["GET", "POST"], name="trigger"),
    Route("/triggers/{rule_id}/toggle", toggle, methods=["POST"]),
    Route("/triggers/{rule_id}/delete", delete, methods=["POST"]),
    Route("/triggers/{rule_id}/{direction:str}", move, methods=["POST"]),
]
