"""The widget on a shop page with a strict Content-Security-Policy, in a real browser.

The shop page (another origin than the chat server, from the ``ShopServer`` of
``test_widget_browser``) sends the policy docs/widget.md documents, with the
script allowed by a nonce (with and without ``'strict-dynamic'``) or by the
chat server's origin, and ``style-src 'self'``: no inline style of ours may
pass. The widget must work in full (chat, an image with its thumbnail,
co-browsing with the recorder) and not one ``securitypolicyviolation`` event
may fire, in the document or in the widget's shadow root. A control at the end
shows that the listener does see violations.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from ..conftest import Server
from .test_demo_browser import watch
from .test_widget_browser import Agent, ShopServer, make_shop
from .test_widget_features_browser import png, poll

pytestmark = pytest.mark.browser

NONCE = "cSp2n0nce+XYZ="

# Collects every CSP violation of the page from the start (a nonced inline
# script, allowed by each policy below); the widget's shadow root is watched
# too once it exists (violations are composed events, but be sure).
WATCHER = """
window.__violations = [];
const note = (e) => window.__violations.push(
  `${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
document.addEventListener("securitypolicyviolation", note);
new MutationObserver(() => {
  const root = document.querySelector("chatserver-chat")?.shadowRoot;
  if (root && !root.__watched) {
    root.__watched = true;
    root.addEventListener("securitypolicyviolation", (e) => { e.stopPropagation(); note(e); });
  }
}).observe(document.documentElement, {childList: true, subtree: true});
"""
# Allowed by its nonce, or where the policy names no nonce, by its hash.
WATCH = f'<script nonce="{NONCE}">{WATCHER}</script>'
WATCH_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(WATCHER.encode()).digest()).decode() + "'"


def policy(server: Server, script: str) -> str:
    """The policy of docs/widget.md for a chat server at ``server.url``."""
    http = server.url
    ws = http.replace("http://", "ws://")
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {script}",
            "style-src 'self'",
            f"connect-src {ws} {http}",
            f"img-src {http}",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def page_html(server: Server, key: str, nonce: bool, head: str = "") -> str:
    attr = f' nonce="{NONCE}"' if nonce else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Strict shop</title>{WATCH}{head}</head>
<body><h1>A strict shop</h1><p>Some products.</p>
<script src="{server.url}/widget.js" data-site="{key}"{attr} async></script></body></html>"""


def violations(page: Page) -> list[str]:
    return list(page.evaluate("window.__violations"))


@pytest.mark.parametrize(
    "script,nonce",
    [
        pytest.param(f"'nonce-{NONCE}' 'strict-dynamic'", True, id="nonce-strict-dynamic"),
        pytest.param(f"'nonce-{NONCE}'", True, id="nonce-only"),
        pytest.param(f"{{origin}} {WATCH_HASH}", False, id="origin"),
    ],
)
def test_widget_works_under_a_strict_policy_without_violations(
    server: Server, shops: ShopServer, context: BrowserContext, script: str, nonce: bool
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    csp = policy(server, script.format(origin=server.url))
    name = f"strict-{len(shops.pages)}"
    url = shops.add(name, page_html(server, shop.key, nonce), {"Content-Security-Policy": csp})
    page = watch(context.new_page(), "visitor", problems)
    page.goto(url)

    # The bubble appears, the chat opens, a message goes out, the reply comes in.
    bubble = page.locator("chatserver-chat .bubble")
    expect(bubble).to_be_visible()
    bubble.click()
    expect(page.locator("#chatserver-panel")).to_be_visible()
    box = page.locator("#chatserver-input")
    box.fill("Hello from a strict page")
    box.press("Enter")
    conv = agent.assigned()
    agent.send({"t": "send", "conv": conv, "cid": "a1", "body": "Hello, strict shop!"})
    expect(page.locator(".msg.them .b")).to_have_text(["Hello, strict shop!"])
    # The widget's styles apply (a constructed sheet): the bubble is round and fixed.
    assert bubble.evaluate("b => getComputedStyle(b).position") == "fixed"
    assert bubble.evaluate("b => getComputedStyle(b).borderRadius") == "50%"

    # An image: the upload (connect-src https) and its thumbnail (img-src).
    page.locator(".cf input[type=file]").set_input_files(
        [{"name": "part.png", "mimeType": "image/png", "buffer": png()}]
    )
    thumb = page.locator(".msg.me a.img img")
    expect(thumb).to_have_attribute("alt", "part.png")
    assert poll(lambda: thumb.evaluate("i => i.complete && i.naturalWidth") == 3, page)

    # Co-browsing: the co-browse bundle (the prompt), then the recorder (the stream).
    agent.request({"t": "cobrowse", "conv": conv, "action": "view"})
    assert agent.request({"t": "cobrowse", "conv": conv, "action": "request"})["t"] == "cobrowse"
    expect(page.locator("chatserver-chat .cb-prompt")).to_be_visible()
    page.locator("chatserver-chat .cb-yes").click()
    expect(page.locator("chatserver-chat .cb-banner")).to_be_visible()
    agent.expect("cobrowse_events", timeout=8)
    agent.request({"t": "cobrowse", "conv": conv, "action": "stop"})
    expect(page.locator("chatserver-chat .cb-banner")).to_have_count(0)

    # Every bundle came with its integrity and the page's nonce.
    scripts = page.evaluate(
        """() => [...document.scripts].filter((s) => s.src.includes("/widget/"))
          .map((s) => [s.src.split("/").pop(), s.integrity, s.crossOrigin, s.nonce])"""
    )
    names = sorted(s[0].split(".")[0] for s in scripts)
    assert names == ["chat", "cobrowse", "recorder"], scripts
    for _file, integrity, cross_origin, script_nonce in scripts:
        assert integrity.startswith("sha384-") and cross_origin == "anonymous"
        assert script_nonce == (NONCE if nonce else "")

    assert violations(page) == []
    assert problems == []

    # Control: the listener does see a blocked inline style in the shadow root.
    page.evaluate(
        """() => {
          const root = document.querySelector("chatserver-chat").shadowRoot;
          const el = document.createElement("div");
          el.innerHTML = '<i style="color: red">x</i>';
          root.append(el);
        }"""
    )
    assert poll(lambda: violations(page), page), "the control violation was not seen"
    assert all(v.startswith("style-src") for v in violations(page))
    agent.close()


# An engine without constructable stylesheets (Safari before 16.4, Firefox
# before 101), as far as the widget can tell: adopting a sheet throws.
NO_ADOPTED_SHEETS = f"""<script nonce="{NONCE}">
Object.defineProperty(ShadowRoot.prototype, "adoptedStyleSheets", {{
  configurable: true,
  get() {{ return []; }},
  set() {{ throw new TypeError("no constructable stylesheets here"); }},
}});
</script>"""


def test_style_fallback_carries_the_nonce(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    """Without constructable stylesheets the widget falls back to <style>
    elements: under a ``style-src`` of nonces they carry the page's nonce."""
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    csp = policy(server, f"'nonce-{NONCE}' 'strict-dynamic'").replace(
        "style-src 'self'", f"style-src 'nonce-{NONCE}'"
    )
    html = page_html(server, shop.key, True, NO_ADOPTED_SHEETS)
    url = shops.add(f"fallback-{len(shops.pages)}", html, {"Content-Security-Policy": csp})
    page = watch(context.new_page(), "visitor", problems)
    page.goto(url)

    bubble = page.locator("chatserver-chat .bubble")
    expect(bubble).to_be_visible()
    assert bubble.evaluate("b => getComputedStyle(b).position") == "fixed"
    bubble.click()
    page.locator("#chatserver-input").fill("Hello from an older browser")
    page.locator("#chatserver-input").press("Enter")
    conv = agent.assigned()
    # The co-browse bundle brings its own styles: one more <style>, nonced too.
    assert agent.request({"t": "cobrowse", "conv": conv, "action": "request"})["t"] == "cobrowse"
    prompt = page.locator("chatserver-chat .cb-prompt")
    expect(prompt).to_be_visible()
    assert prompt.evaluate("p => getComputedStyle(p).position") == "fixed"
    styles = page.evaluate(
        """() => [...document.querySelector("chatserver-chat").shadowRoot
          .querySelectorAll("style")].map((s) => s.nonce)"""
    )
    assert len(styles) >= 2 and set(styles) == {NONCE}, styles  # the chat's, co-browsing's
    assert violations(page) == []
    assert problems == []
    agent.close()
