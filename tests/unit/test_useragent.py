"""The User-Agent and Accept-Language reader (``chatserver/useragent.py``)."""

from __future__ import annotations

import pytest

from chatserver.useragent import UserAgent, client_info, language, parse

CASES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        UserAgent("Chrome", "Windows", "desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
        UserAgent("Edge", "Windows", "desktop"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        UserAgent("Safari", "macOS", "desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        UserAgent("Firefox", "Linux", "desktop"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        UserAgent("Safari", "iOS", "mobile"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
        UserAgent("Chrome", "iOS", "mobile"),
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        UserAgent("Safari", "iOS", "tablet"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36",
        UserAgent("Chrome", "Android", "mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Safari/537.36",
        UserAgent("Chrome", "Android", "tablet"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        UserAgent("Samsung Internet", "Android", "mobile"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
        UserAgent("Opera", "Windows", "desktop"),
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        UserAgent("Chrome", "ChromeOS", "desktop"),
    ),
    (
        "Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko",
        UserAgent("Internet Explorer", "Windows", "desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/124.0.6367.29 Safari/537.36",
        UserAgent("Chrome", "Linux", "desktop"),
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        UserAgent("", "", "bot"),
    ),
    (
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        UserAgent("Chrome", "", "bot"),
    ),
    ("curl/8.5.0", UserAgent("", "", "bot")),
    ("Python/3.11 websockets/14.1", UserAgent("", "", "bot")),
    ("", UserAgent("", "", "bot")),
    ("Mozilla/5.0 (Linux; Android 9; CUBOT P30) Mobile", UserAgent("", "Android", "mobile")),
]


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_parse(ua: str, expected: UserAgent) -> None:
    assert parse(ua) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es-es"),
        ("en;q=0.5, ca;q=0.9", "ca"),
        ("fr", "fr"),
        ("*", ""),
        ("", ""),
        ("de;q=abc, it;q=0.1", "it"),
        ("x" * 600, ""),
        ("<script>, pt-BR;q=0.7", "pt-br"),
    ],
)
def test_language(header: str, expected: str) -> None:
    assert language(header) == expected


def test_client_info() -> None:
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"
    assert client_info(ua, "ca-ES,ca;q=0.9") == {
        "browser": "Safari",
        "os": "iOS",
        "device": "mobile",
        "lang": "ca-es",
    }
