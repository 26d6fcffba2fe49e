"""A small User-Agent and Accept-Language reader (pure code).

It answers the questions triggers and agents ask, not every question a
User-Agent string could answer: the browser family, the operating system and
the kind of device.  The rules, in order:

* **device**: ``bot`` when the string declares a crawler or a tool (``bot``,
  ``crawler``, ``spider``, ``curl``...); ``tablet`` for iPads, Android
  without ``Mobile``, Kindle/Silk and other tablets; ``mobile`` for phones
  (``Mobi``, iPhone, Android with ``Mobile``, Windows Phone...); else
  ``desktop``.  An iPad in desktop mode says "Macintosh" and counts as a
  desktop: the server cannot tell.  Headless Chrome is counted as Chrome on
  its operating system, not as a bot (it is how browser tests run).
* **browser**: Edge, Opera, Samsung Internet, Firefox, Chrome, Safari,
  Internet Explorer, checked in that order because each embeds the names of
  the ones after it; ``""`` when none matches.
* **os**: Windows, iOS, Android, ChromeOS, macOS, Linux, or ``""``.

``language`` picks the preferred tag of an ``Accept-Language`` header
(highest ``q``, first on a tie), lower-cased: ``"es-ES,es;q=0.9"`` gives
``"es-es"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MAX_UA_CHARS = 512  # longer strings are read up to here
DEVICES = ("mobile", "tablet", "desktop", "bot")

_BOT = re.compile(
    r"bot[/;)\-]|\bbot\b|slackbot|crawl|spider|slurp|mediapartners|facebookexternalhit|"
    r"embedly|lighthouse|pingdom|uptimerobot|curl/|wget/|python|httpx/|go-http-client|"
    r"java/|okhttp|libwww",
    re.I,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|nexus (7|9|10)|sm-t\d", re.I)
_MOBILE = re.compile(r"mobi|iphone|ipod|windows phone|blackberry|bb10|opera mini|iemobile", re.I)
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b|\bOPT/")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"\b(Headless)?Chrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*Safari/|\bSafari/")),
    ("Internet Explorer", re.compile(r"\bMSIE |\bTrident/")),
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Windows", re.compile(r"Windows")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("Linux", re.compile(r"Linux|X11")),
)
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True, slots=True)
class UserAgent:
    browser: str
    os: str
    device: str  # one of DEVICES


@lru_cache(maxsize=1024)
def parse(ua: str) -> UserAgent:
    """Browser, OS and device kind of a User-Agent string (cached: few distinct strings)."""
    ua = ua[:MAX_UA_CHARS]
    browser = next((name for name, rx in _BROWSERS if rx.search(ua)), "")
    system = next((name for name, rx in _SYSTEMS if rx.search(ua)), "")
    if not ua.strip() or _BOT.search(ua):
        device = "bot"
    elif _TABLET.search(ua) or (system == "Android" and "Mobile" not in ua):
        device = "tablet"
    elif _MOBILE.search(ua):
        device = "mobile"
    else:
        device = "desktop"
    return UserAgent(browser, system, device)


def language(header: str) -> str:
    """The preferred language tag of an ``Accept-Language`` header, lower-cased, or ``""``."""
    best, best_q = "", 0.0
    for part in header[:512].split(","):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or not _LANG.match(tag):
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                continue
        if q > best_q:
            best, best_q = tag.lower(), q
    return best


def client_info(user_agent: str, accept_language: str) -> dict[str, str]:
    """What presence shows of a visitor's browser: ``browser``, ``os``, ``device``, ``lang``."""
    ua = parse(user_agent)
    return {
        "browser": ua.browser,
        "os": ua.os,
        "device": ua.device,
        "lang": language(accept_language),
    }
