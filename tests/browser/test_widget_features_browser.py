"""The widget's features in a real browser against a real server: offline form,
satisfaction rating, attachments, tracked events, verified identity and the
focus trap of the full-screen layout.

Shop pages come from the ``ShopServer`` of ``test_widget_browser`` (another
origin than the chat server); agents are protocol clients (``Agent``).
"""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, FileChooser, Page, expect

from chatserver.features.attachments import URL_TTL, signed_url
from chatserver.features.identity import identity_hash
from chatserver.security import Signer, load_secret
from chatserver.store_sqlite import SQLiteStore
from chatserver.types import Conversation, SiteSettings

from ..conftest import PASSWORD, Server
from .contrast import widget_contrast
from .test_demo_browser import watch
from .test_widget_browser import Agent, ShopServer, make_shop, shop_page

pytestmark = pytest.mark.browser

T = TypeVar("T")


def png(width: int = 3, height: int = 2) -> bytes:
    """A real (tiny, red) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" * 20
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


def with_store(server: Server, work: Callable[[SQLiteStore], Awaitable[T]]) -> T:
    """Run ``work`` on the server's SQLite file (on a thread: Playwright owns this loop)."""

    async def run() -> T:
        store = SQLiteStore(server.data / "chatserver.db")
        await store.start()
        try:
            return await work(store)
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result()


def stored_conversation(server: Server, conv_id: str) -> Conversation:
    conv = with_store(server, lambda s: s.get_conversation(conv_id))
    assert conv is not None
    return conv


def poll(check: Callable[[], Any], page: Page | None = None, timeout: float = 5.0) -> Any:
    """``check()`` once it is truthy (or its last value after ``timeout``).

    With a ``page``, waits through Playwright so that the page's events (console
    messages, file choosers) are delivered meanwhile; ``time.sleep`` would hold them.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)


def open_chat(context: BrowserContext, url: str, name: str, problems: list[str]) -> Page:
    page = watch(context.new_page(), name, problems)
    page.goto(url)
    page.click("chatserver-chat .bubble")
    expect(page.locator("#chatserver-panel")).to_be_visible()
    return page


def send(page: Page, text: str) -> None:
    box = page.locator("#chatserver-input")
    box.fill(text)
    box.press("Enter")


def test_offline_form_reaches_an_agent_who_comes_online_later(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    problems: list[str] = []
    page = open_chat(context, shops.add("offline-form", shop_page(server, shop.key)), "v", problems)

    # Nobody online: the form stands in for the composer, focus on its first field.
    expect(page.locator("#chatserver-input")).to_be_hidden()
    expect(page.locator("form.offline .intro")).to_have_text(
        "We are away right now. Leave a message and we will get back to you by email."
    )
    expect(page.locator("#chatserver-name")).to_be_focused()
    page.fill("#chatserver-name", "Ann Example")
    page.fill("#chatserver-email", "ann@localhost")  # the browser refuses it (no domain dot)
    page.fill("#chatserver-offline-message", "Do you ship to Andorra?")
    page.click("form.offline button[type=submit]")
    page.wait_for_timeout(300)
    expect(page.locator(".msg.me")).to_have_count(0)

    page.fill("#chatserver-email", "ann@example.com")
    page.click("form.offline button[type=submit]")
    expect(page.locator(".msg.me .b")).to_have_text(["Do you ship to Andorra?"])
    expect(page.locator(".sys")).to_have_text(
        ["Thanks! We will get back to you by email at ann@example.com."]
    )
    expect(page.locator("form.offline")).to_be_hidden()
    expect(page.locator("#chatserver-input")).to_be_visible()  # more may follow in the chat
    # #21: the header does not promise a reply here after the form promised e-mail
    expect(page.locator(".head p")).to_have_text("We are away right now.")

    # Later an agent comes online: the message is in the conversation list.
    agent = Agent(server, next(iter(shop.agents)))
    welcome = agent.expect("welcome")
    (conv,) = welcome["conversations"]
    assert conv["offline"] is True
    history = agent.request({"t": "history", "conv": conv["id"], "since": 0})
    (msg,) = [m for m in history["messages"] if m["kind"] == "text"]
    assert msg["body"] == "Do you ship to Andorra?"
    assert msg["data"]["offline"] == {"name": "Ann Example", "email": "ann@example.com"}
    record = agent.request({"t": "visitor", "visitor": conv["visitor"]})
    assert record["visitor"]["email"] == "ann@example.com"
    # and the visitor's reload shows the same, with the agent now there
    page.reload()
    expect(page.locator(".msg.me .b")).to_have_text(["Do you ship to Andorra?"])
    expect(page.locator(".sys").first).to_have_text(
        "Thanks! We will get back to you by email at ann@example.com."
    )
    agent.close()
    assert problems == []


def test_rating_after_the_agent_closes_the_chat(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = open_chat(
        context, shops.add("csat", shop_page(server, shop.key, lang="es")), "v", problems
    )
    send(page, "Hola")
    conv = agent.assigned()
    expect(page.locator(".csat")).to_be_hidden()
    assert agent.request({"t": "close", "conv": conv})["t"] == "ok"

    prompt = page.locator(".csat")
    expect(prompt.locator(".q")).to_have_text("¿Qué tal ha ido el chat?")
    expect(prompt.locator(".opt")).to_have_text(["Muy bien", "Bien", "Podría mejorar"])
    # the "could be better" choice, from the keyboard
    prompt.locator(".opt").nth(2).focus()
    page.keyboard.press("Enter")
    expect(prompt.locator(".opt").nth(2)).to_have_attribute("aria-pressed", "true")
    first = agent.expect("msg", lambda f: f["conv"] == conv and f["data"].get("event") == "rated")
    assert first["data"]["rating"] == "poor"
    prompt.locator(".opt").nth(0).click()  # changed their mind
    page.fill("#chatserver-rate-comment", "Rápido y amable")
    page.click(".csat .more button")
    expect(prompt.locator(".thanks")).to_have_text("¡Gracias por tu opinión!")
    expect(prompt.locator(".opts")).to_be_hidden()
    live = agent.expect(
        "conv",
        lambda f: (
            f["conv"]["id"] == conv
            and (f["conv"].get("rating") or {}).get("comment") == "Rápido y amable"
        ),
    )
    assert live["conv"]["rating"]["value"] == "great"
    stored = poll(lambda: (c := stored_conversation(server, conv)).rating_comment and c)
    assert (stored.rating, stored.rating_comment) == ("great", "Rápido y amable")
    agent.close()
    assert problems == []


def test_image_and_pdf_round_trip(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = open_chat(context, shops.add("files", shop_page(server, shop.key)), "v", problems)
    # Listen early: Playwright then intercepts every file chooser of the page.
    choosers: list[FileChooser] = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    send(page, "Here is the broken part")
    conv = agent.assigned()
    image = png()

    # The paperclip is a button: keyboard opens the file chooser.
    clip = page.locator(".cf .clip")
    expect(clip).to_have_attribute("aria-label", "Attach a file")
    clip.focus()
    page.keyboard.press("Enter")
    chooser = poll(lambda: choosers and choosers[0], page)
    assert chooser, "no file chooser"
    chooser.set_files(
        [
            {"name": "part.png", "mimeType": "image/png", "buffer": image},
            {"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    thumb = page.locator(".msg.me a.img img")
    expect(thumb).to_have_attribute("alt", "part.png")
    assert poll(lambda: thumb.evaluate("i => i.complete && i.naturalWidth") == 3, page)
    doc = page.locator(".msg.me a.doc")
    expect(doc).to_contain_text(f"invoice.pdf (PDF, {round(len(PDF) / 1024)} KB)")
    # #21: it says what it does (the server sends a PDF as a download)
    expect(doc).to_contain_text("(downloads the file)")
    expect(doc).to_have_attribute("download", "invoice.pdf")
    assert doc.get_attribute("target") is None

    # The agent gets both, with URLs that serve the bytes.
    def attachment(name: str) -> dict[str, Any]:
        msg = agent.expect(
            "msg",
            lambda f: (
                f["conv"] == conv and f.get("data", {}).get("attachment", {}).get("name") == name
            ),
        )
        return dict(msg["data"]["attachment"])

    got_png, got_pdf = attachment("part.png"), attachment("invoice.pdf")
    assert (got_png["type"], got_png["size"]) == ("image/png", len(image))
    with httpx.Client(base_url=server.url + "/") as http:
        r = http.get(got_png["url"])
        assert r.status_code == 200 and r.content == image
        r = http.get(got_pdf["url"])
        assert r.content == PDF and r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"].startswith("attachment;")
        # a tampered or expired URL is refused
        url = got_png["url"]  # one whole character of the signature changed
        assert http.get(url[:-5] + ("B" if url[-5] == "A" else "A") + url[-4:]).status_code == 403
        signer = Signer(load_secret(server.data))
        expired = signed_url(signer, got_png["id"], now=time.time() - 2 * URL_TTL)
        assert http.get(expired).status_code == 403

    # Clicking the thumbnail opens the full image.
    with context.expect_page() as opened:
        thumb.click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url.startswith(f"{server.url}/attachments/{got_png['id']}?exp=")
    full.close()

    # The agent's own file reaches the visitor.
    token = httpx.post(
        f"{server.url}/api/login",
        json={"email": next(iter(shop.agents)), "password": PASSWORD},
    ).json()["token"]
    up = httpx.post(
        f"{server.url}/api/attachments?name=label.png",
        content=image,
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    reply = agent.request({"t": "attach", "conv": conv, "cid": "a-f1", "attachment": up["id"]})
    assert reply["t"] == "ack", reply
    expect(page.locator(".msg.them a.img img")).to_have_attribute("alt", "label.png")

    # The agent console shows the image as a thumbnail and the PDF as a link.
    console = watch(context.new_page(), "console", problems)
    console.goto(f"{server.url}/console/login")
    console.fill("input[name=email]", next(iter(shop.agents)))
    console.fill("input[name=password]", PASSWORD)
    console.click("form.login button[type=submit]")
    console.locator("#list-mine .conv-item").first.click()
    links = console.locator(".entry .attachment a")
    expect(links).to_have_count(3)  # the two files were uploaded side by side: any order
    part = links.filter(has_text="part.png")
    expect(part).to_have_count(1)
    expect(links.filter(has_text="invoice.pdf")).to_have_count(1)
    expect(part.locator("img.thumb")).to_have_count(1)
    href = part.get_attribute("href")
    assert href and href.startswith(f"/attachments/{got_png['id']}?")
    agent.close()
    assert problems == []


def test_files_of_the_wrong_type_or_size_are_refused(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = open_chat(context, shops.add("bad-files", shop_page(server, shop.key)), "v", problems)
    send(page, "hi")
    conv = agent.assigned()
    files = page.locator(".cf input[type=file]")
    files.set_input_files([{"name": "logo.svg", "mimeType": "image/svg+xml", "buffer": SVG}])
    failed = page.locator(".msg.me.failed")
    expect(failed.locator(".meta")).to_contain_text(
        "Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent."
    )
    files.set_input_files(
        [{"name": "huge.png", "mimeType": "image/png", "buffer": png() + bytes(10 * 1024 * 1024)}]
    )
    expect(failed.nth(1).locator(".meta")).to_contain_text("Too big: files can be up to 10 MB.")
    # An SVG (or HTML) that claims to be a PNG: the server reads the bytes and refuses it.
    files.set_input_files([{"name": "fake.png", "mimeType": "image/png", "buffer": SVG}])
    expect(failed).to_have_count(3)
    expect(failed.nth(2).locator(".meta")).to_contain_text("Only images")
    # #21: a newer message goes below the refused files, not above them
    send(page, "did you get it?")
    expect(page.locator(".msg.me").last).to_contain_text("did you get it?")
    # Dismissed, they are gone; none reached the agent.
    for _ in range(3):
        failed.first.locator("button", has_text="Dismiss").click()
    expect(failed).to_have_count(0)
    texts = agent.request({"t": "history", "conv": conv, "since": 0})["messages"]
    assert not [m for m in texts if m.get("data", {}).get("attachment")]
    agent.close()
    # the browser logs the refused upload's HTTP status; nothing else
    assert [p for p in problems if "415" not in p] == []


def test_track_reaches_the_agent_live_and_is_stored(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    head = """<script>
  window.$chat = window.$chat || [];
  $chat.push(["track", "viewed_size_guide", {product: "linen-shirt", size: "M"}]);
</script>"""
    problems: list[str] = []
    page = watch(context.new_page(), "v", problems)
    page.goto(shops.add("track", shop_page(server, shop.key, head=head)))
    first = agent.expect("visitor", lambda f: f.get("event", {}).get("name") == "viewed_size_guide")
    assert first["event"]["props"] == {"product": "linen-shirt", "size": "M"}
    vid = first["visitor"]["id"]
    page.evaluate("$chat.push(['track', 'added_to_cart', {sku: 'B-12', total: 59.9}])")
    live = agent.expect("visitor", lambda f: f.get("event", {}).get("name") == "added_to_cart")
    assert live["event"]["props"] == {"sku": "B-12", "total": 59.9}
    record = agent.request({"t": "visitor", "visitor": vid})
    assert [e["name"] for e in record["events"]] == ["added_to_cart", "viewed_size_guide"]
    stored = with_store(server, lambda s: s.visitor_events(vid))
    assert [e.name for e in stored] == ["added_to_cart", "viewed_size_guide"]
    agent.close()
    assert problems == []


def identify_page(server: Server, key: str, who: str) -> str:
    head = f"<script>window.$chat = window.$chat || []; $chat.push(['identify', {who}]);</script>"
    return shop_page(server, key, head=head)


def test_forged_identity_refused_when_required_and_unverified_when_optional(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    strict = make_shop(server, agents=1, settings=SiteSettings(require_identity=True))
    lenient = make_shop(server, agents=1)
    forged = identity_hash("a guess", "cust-42")
    who = f"{{id: 'cust-42', email: 'eve@example.com', hash: '{forged}'}}"
    problems: list[str] = []
    warnings: list[str] = []
    for shop, name in ((strict, "strict"), (lenient, "lenient")):
        agent = Agent(server, next(iter(shop.agents)))
        page = watch(context.new_page(), name, problems)
        page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
        page.goto(shops.add(f"id-{name}", identify_page(server, shop.key, who)))
        seen = agent.expect("visitor", lambda f: f["visitor"]["page"] is not None)
        vid = seen["visitor"]["id"]
        if shop is strict:
            assert poll(lambda: any("identify refused" in w for w in warnings), page)
            record = agent.request({"t": "visitor", "visitor": vid})["visitor"]
            assert (record["user_id"], record["verified"], record["email"]) == ("", False, "")
        else:
            got = agent.expect("visitor", lambda f: f["visitor"]["user_id"] == "cust-42")
            assert got["visitor"]["verified"] is False
            assert got["visitor"]["email"] == "eve@example.com"
        agent.close()
    assert problems == []


def test_verified_identity_follows_the_customer_to_another_device(
    server: Server, shops: ShopServer, chromium: Any
) -> None:
    shop = make_shop(server, agents=1, settings=SiteSettings(require_identity=True))
    agent = Agent(server, next(iter(shop.agents)))
    secret = with_store(server, lambda s: s.identity_secret(shop.site.id))
    good = identity_hash(secret, "cust-7")  # what the shop's server computes
    url = shops.add(
        "id-good",
        identify_page(server, shop.key, f"{{id: 'cust-7', name: 'Ann', hash: '{good}'}}"),
    )
    problems: list[str] = []
    laptop_ctx, phone_ctx = chromium.new_context(), chromium.new_context()
    try:
        laptop = open_chat(laptop_ctx, url, "laptop", problems)
        verified = agent.expect("visitor", lambda f: f["visitor"]["verified"] is True)
        assert verified["visitor"]["user_id"] == "cust-7"
        send(laptop, "Where is my order 1234?")
        conv = agent.assigned()
        agent.send({"t": "send", "conv": conv, "cid": "a1", "body": "On its way!"})
        expect(laptop.locator(".msg.them .b")).to_have_text(["On its way!"])

        # Another device of the same customer: the widget moves onto their record.
        phone = open_chat(phone_ctx, url, "phone", problems)
        expect(phone.locator(".msg .b")).to_have_text(["Where is my order 1234?", "On its way!"])
        send(phone, "Thanks!")
        expect(laptop.locator(".msg.me .b").last).to_have_text("Thanks!")
        assert agent.texts(conv) == ["Where is my order 1234?", "On its way!", "Thanks!"]
        # and keeps it across a reload (the new token was stored)
        phone.reload()
        expect(phone.locator(".msg .b")).to_have_text(
            ["Where is my order 1234?", "On its way!", "Thanks!"]
        )
    finally:
        laptop_ctx.close()
        phone_ctx.close()
        agent.close()
    assert problems == []


def test_tab_stays_inside_the_full_screen_window(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    shop = make_shop(server, agents=1)
    agent = Agent(server, next(iter(shop.agents)))
    body = '<p><a id="before" href="#a">a link of the shop</a></p>'
    problems: list[str] = []
    page = watch(context.new_page(), "narrow", problems)
    page.set_viewport_size({"width": 380, "height": 640})
    page.goto(shops.add("narrow", shop_page(server, shop.key, body=body)))
    page.click("chatserver-chat .bubble")
    send(page, "Hi from my phone, see https://example.com/x")
    agent.assigned()
    panel = page.locator("#chatserver-panel")
    box = panel.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (380, 640)

    where = """() => {
      const host = document.querySelector("chatserver-chat");
      const el = host && host.shadowRoot.activeElement;
      if (document.activeElement !== host || !el) return "outside";
      if (!el.closest("#chatserver-panel")) return "widget, not the window";
      return el.id || el.className || el.tagName;
    }"""
    seen = []
    for _ in range(16):  # the window has 7 stops: twice round
        page.keyboard.press("Tab")
        seen.append(page.evaluate(where))
    assert "outside" not in seen and "widget, not the window" not in seen, seen
    assert seen.count("chatserver-input") >= 2, seen  # went round at least once
    for _ in range(12):
        page.keyboard.press("Shift+Tab")
        at = page.evaluate(where)
        assert at not in ("outside", "widget, not the window"), at
    # Tab from the last control wraps to the first, Shift+Tab the other way.
    page.locator(".cf button[type=submit]").focus()
    page.keyboard.press("Tab")
    expect(page.locator(".head button")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".cf button[type=submit]")).to_be_focused()

    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.locator("chatserver-chat .bubble")).to_be_focused()
    # wide again: Tab leaves the window as usual (no trap)
    page.set_viewport_size({"width": 1000, "height": 700})
    page.click("chatserver-chat .bubble")
    # Opening focuses the composer on the next task; wait for it, or it lands after the Tab.
    expect(page.locator("#chatserver-input")).to_be_focused()
    page.locator(".cf button[type=submit]").focus()
    page.keyboard.press("Tab")
    assert page.evaluate(where) in ("outside", "widget, not the window")
    agent.close()
    assert problems == [], problems


def test_a_card_number_never_leaves_the_page(
    server: Server, shops: ShopServer, context: BrowserContext
) -> None:
    """docs/privacy.md: card numbers and the site's patterns are redacted in the widget,
    before the typing preview or the message is sent, and the visitor is told."""
    iban = "ES9121000418450200051332"
    shop = make_shop(server, agents=1, settings=SiteSettings(redact_patterns=(r"ES\d{22}",)))
    agent = Agent(server, next(iter(shop.agents)))
    problems: list[str] = []
    page = watch(context.new_page(), "card", problems)
    sent: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent",
            lambda p: sent.append(p if isinstance(p, str) else p.decode("utf-8", "replace")),
        ),
    )
    page.goto(shops.add("card", shop_page(server, shop.key)))
    page.click("chatserver-chat .bubble")
    send(page, "Hello")
    agent.assigned()
    hint = page.locator("#chatserver-redacted")
    expect(hint).to_be_hidden()
    box = page.locator("#chatserver-input")
    typed = f"my card 4242 4242 4242 4242 and iban {iban} ok"
    box.press_sequentially(typed, delay=15)
    expect(hint).to_be_visible()
    expect(hint).to_contain_text("Card numbers")
    agent.expect("preview", lambda f: f["text"].endswith(" ok"))
    box.press("Enter")
    want = "my card [redacted] and iban [redacted] ok"
    agent.expect("msg", lambda f: f.get("body") == want)
    expect(page.locator(".msg.me .b").last).to_have_text(want)  # the visitor sees it
    expect(hint).to_be_hidden()
    secrets = ("4242 4242 4", "4242424242", iban[:9], iban[-8:])
    leaked = [s for s in secrets for frame in sent if s in frame]
    assert sent and not leaked, leaked
    files = [server.data / name for name in ("chatserver.db", "chatserver.db-wal")]
    stored = b"".join(f.read_bytes() for f in files if f.exists()) + server.log.read_bytes()
    assert b"4242 4242 4242 4242" not in stored and iban.encode() not in stored
    agent.close()
    assert problems == []


@pytest.mark.parametrize("color", ["#2563eb", "#facc15", "#111827"])
def test_the_bubble_icon_is_readable_on_any_brand_colour(
    server: Server, shops: ShopServer, context: BrowserContext, color: str
) -> None:
    """#21: the icon took the page text's colour (2.8:1 on the default blue)."""
    shop = make_shop(server, agents=1, settings=SiteSettings(color=color))
    problems: list[str] = []
    page = watch(context.new_page(), "bubble", problems)
    page.goto(shops.add(f"bubble-{color[1:]}", shop_page(server, shop.key)))
    expect(page.locator("chatserver-chat .bubble")).to_be_visible()
    assert widget_contrast(page, ".bubble") >= 3, color  # WCAG 1.4.11, non-text contrast
    page.click("chatserver-chat .bubble")
    assert widget_contrast(page, ".cf button[type=submit]") >= 3, color
    assert widget_contrast(page, ".head") >= 4.5, color  # the title on the brand colour
    assert problems == []


def test_a_phone_gets_the_full_screen_chat_on_a_page_without_a_viewport_tag(
    server: Server, shops: ShopServer, chromium: Browser
) -> None:
    """#21: a 375 px phone lays such a page out 980 px wide and shrinks it; the chat
    must still fill the screen at its normal size, not be a tiny desktop window."""
    shop = make_shop(server, agents=1)
    ctx = chromium.new_context(
        viewport={"width": 375, "height": 667},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    try:
        problems: list[str] = []
        page = watch(ctx.new_page(), "phone", problems)
        page.goto(shops.add("no-viewport", shop_page(server, shop.key)))  # no viewport meta
        bubble = page.locator("chatserver-chat .bubble")
        expect(bubble).to_be_visible()
        scale = page.evaluate("visualViewport.scale")
        assert scale < 0.5  # the page is shrunk to the screen
        box = bubble.bounding_box()
        assert box is not None and box["width"] * scale >= 50  # a finger-sized bubble
        bubble.tap()
        panel = page.locator("#chatserver-panel")
        expect(panel).to_be_visible()
        width, height = page.evaluate("[innerWidth, innerHeight]")
        got = panel.bounding_box()
        assert got is not None and (round(got["width"]), round(got["height"])) == (width, height)
        field = page.locator("#chatserver-offline-message").bounding_box()  # nobody online
        assert field is not None and field["width"] * scale > 200  # legible on the screen
        assert problems == []
    finally:
        ctx.close()
