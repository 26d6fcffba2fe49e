"""``HeldPages``: page views of visitors without a row, bounded in memory (pure code)."""

from __future__ import annotations

import pytest

from chatserver import held
from chatserver.held import HeldPages
from chatserver.store import VISIT_GAP


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_views_are_numbered_by_visit_and_popped_once() -> None:
    clock = Clock()
    pages = HeldPages(clock)
    assert pages.add("v_1", "https://a", "A", "").visit == 1
    clock.now += 10
    assert pages.add("v_1", "https://b", "", "https://a").visit == 1
    pages.add("v_2", "https://c", "", "")
    assert [v.url for v in pages.get("v_1")] == ["https://a", "https://b"]
    assert len(pages) == 3
    assert [v.url for v in pages.pop("v_1")] == ["https://a", "https://b"]
    assert pages.pop("v_1") == [] and pages.get("v_1") == []
    assert len(pages) == 1


def test_a_visitor_idle_for_a_visit_gap_is_dropped() -> None:
    clock = Clock()
    pages = HeldPages(clock)
    pages.add("v_old", "https://a", "", "")
    clock.now += VISIT_GAP / 2
    pages.add("v_new", "https://b", "", "")
    clock.now += VISIT_GAP / 2 + 1
    assert pages.get("v_old") == []  # its last view is more than a gap ago
    assert [v.url for v in pages.get("v_new")] == ["https://b"]
    assert len(pages) == 1


def test_bounded_per_visitor_and_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    pages = HeldPages(clock)
    for i in range(held.MAX_PER_VISITOR + 5):
        pages.add("v_1", f"https://p/{i}", "", "")
    kept = pages.get("v_1")
    assert len(kept) == held.MAX_PER_VISITOR and kept[-1].url.endswith(
        f"/{held.MAX_PER_VISITOR + 4}"
    )
    monkeypatch.setattr(held, "MAX_VIEWS", 60)
    for i in range(20):  # the least recently active visitors go first
        pages.add(f"v_x{i}", "https://x", "", "")
    assert len(pages) <= 60
    assert pages.get("v_1") == [] and len(pages.get("v_x19")) == 1
