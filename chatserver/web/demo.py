"""The first-run demo: a tiny shop at ``/demo/``.

The shop shows the chat embedded exactly as a shop owner would embed it;
agents answer it in the console (``/console/``, the ``agent_console``
package).  The demo site's key is looked up at request time, so the shop
works as soon as ``chatserver demo`` created it.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from ..node import Node
from ..store import Store
from ..types import Site
from .files import TEMPLATES_DIR

# The demo site and its two logins (``chatserver demo``, cli.ensure_demo).
DEMO_SITE = "Demo shop"
DEMO_EMAIL = "agent@demo.shop"
DEMO_ADMIN_EMAIL = "admin@demo.shop"
DEMO_DEPARTMENTS = ("sales", "support")


async def demo_site(store: Store) -> Site | None:
    """The demo site: the demo agents' site (an admin may have renamed it), else by name."""
    for email in (DEMO_ADMIN_EMAIL, DEMO_EMAIL):
        agent = await store.agent_by_email(email)
        if agent is not None:
            return await store.get_site(agent.site_id)
    return next((s for s in await store.list_sites() if s.name == DEMO_SITE), None)


TEMPLATES = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


@dataclass(frozen=True, slots=True)
class Product:
    slug: str
    name: str
    price_cents: int
    color: str
    blurb: str

    @property
    def price(self) -> str:
        return f"€{self.price_cents // 100}.{self.price_cents % 100:02d}"


PRODUCTS = (
    Product("linen-shirt", "Linen shirt", 4900, "#e8d8c3", "Light, breathable, made in Portugal."),
    Product(
        "canvas-bag", "Canvas tote bag", 2500, "#c9d6c1", "Heavy cotton canvas; fits a laptop."
    ),
    Product("wool-beanie", "Merino beanie", 1900, "#c7cfe0", "Soft merino wool, one size."),
)
_BY_SLUG = {p.slug: p for p in PRODUCTS}


async def _site_key(request: Request) -> str | None:
    node: Node = request.app.state.node
    site = await demo_site(node.store)
    return site.key if site else None


async def _page(request: Request, template: str, **context: object) -> Response:
    key = await _site_key(request)
    if key is None:
        return TEMPLATES.TemplateResponse(request, "demo/missing.html", status_code=404)
    return TEMPLATES.TemplateResponse(request, template, {"site_key": key, **context})


async def home(request: Request) -> Response:
    return await _page(request, "demo/home.html", products=PRODUCTS)


async def product(request: Request) -> Response:
    item = _BY_SLUG.get(request.path_params["slug"])
    if item is None:
        return TEMPLATES.TemplateResponse(request, "demo/not_found.html", status_code=404)
    return await _page(request, "demo/product.html", product=item)


async def checkout(request: Request) -> Response:
    return await _page(request, "demo/checkout.html", products=PRODUCTS)


routes: list[BaseRoute] = [
    Route("/demo/", home, name="demo_home"),
    Route("/demo/product/{slug}", product, name="demo_product"),
    Route("/demo/checkout", checkout, name="demo_checkout"),
]
