"""WCAG contrast of what a page shows, read from the computed styles (browser tests)."""

from __future__ import annotations

import re

from playwright.sync_api import Page

_COLORS = """(sel) => {
  const el = document.querySelector("chatserver-chat").shadowRoot.querySelector(sel);
  const s = getComputedStyle(el);
  return [s.color, s.backgroundColor];
}"""


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) / 255 for x in re.findall(r"\d+", rgb)[:3])

    def lin(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def ratio(a: str, b: str) -> float:
    """The WCAG contrast ratio of two CSS ``rgb(...)`` colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def widget_contrast(page: Page, selector: str) -> float:
    """Text (and ``currentColor`` icon) against the background of an element of the widget."""
    color, background = page.evaluate(_COLORS, selector)
    return ratio(color, background)
