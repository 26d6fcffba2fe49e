"""Signals found in recording batches (recordings/signals.py): each rule, across batches."""

from __future__ import annotations

from chatserver.types import RecordingMark
from recordings.signals import DEAD_WINDOW, RAGE_WINDOW, Watch, detect

CHECKOUT = "https://shop.example/checkout"


def page(ts: float, url: str = "https://shop.example/") -> RecordingMark:
    return RecordingMark("page", ts, {"url": url, "title": ""})


def click(ts: float, selector: str = "button#pay", actionable: bool = False) -> RecordingMark:
    data: dict[str, object] = {"selector": selector, "text": "Pay"}
    if actionable:
        data["actionable"] = True
    return RecordingMark("click", ts, data)


def kinds(marks: list[RecordingMark]) -> list[str]:
    return [m.kind for m in marks]


def test_three_clicks_on_one_element_within_a_second_are_a_rage_click() -> None:
    w = Watch()
    got = detect(w, [page(0), click(100), click(400), click(700), click(900)], [], [])
    assert kinds(got) == ["rage"]  # one signal for the burst
    assert got[0].data["url"] == "https://shop.example/" and got[0].data["selector"] == "button#pay"
    # spread out, or on different elements: none
    assert detect(Watch(), [click(0), click(RAGE_WINDOW), click(2 * RAGE_WINDOW + 1)], [], []) == []
    assert detect(Watch(), [click(0, "a"), click(100, "b"), click(200, "c")], [], []) == []


def test_a_burst_split_across_batches_is_found() -> None:
    w = Watch()
    assert detect(w, [click(100), click(300)], [], []) == []
    assert kinds(detect(w, [click(500)], [], [])) == ["rage"]


def test_a_click_on_a_button_with_no_change_after_it_is_dead() -> None:
    w = Watch(url=CHECKOUT)
    got = detect(w, [click(0, actionable=True)], [], [])
    assert got == []  # not yet known: the window is still open
    later = detect(w, [page(DEAD_WINDOW + 10, CHECKOUT)], [], [])
    # the navigation came after the window: the click was dead
    assert kinds(later) == ["dead"] and later[0].data["url"] == CHECKOUT


def test_a_change_or_a_navigation_answers_a_click() -> None:
    assert detect(Watch(), [click(0, actionable=True)], [200.0, 5000.0], []) == []
    w = Watch()
    assert detect(w, [click(0, actionable=True), page(300)], [], []) == []
    assert detect(w, [page(9000)], [], []) == []
    # a click on plain text is never dead
    assert detect(Watch(), [click(0)], [5000.0], []) == []


def test_errors_and_failed_requests_carry_the_page() -> None:
    marks = [
        page(0, CHECKOUT),
        RecordingMark("error", 10, {"message": "x is undefined", "source": "app.js", "frames": []}),
        RecordingMark("request", 20, {"method": "POST", "endpoint": "/api/pay", "status": 502}),
    ]
    got = detect(Watch(), marks, [], [])
    assert kinds(got) == ["error", "request"]
    assert all(m.data["url"] == CHECKOUT for m in got)
    assert got[1].data["endpoint"] == "/api/pay" and got[1].data["status"] == 502


def test_typing_into_a_checkout_form_and_leaving_without_submitting_is_abandonment() -> None:
    w = Watch()
    assert detect(w, [page(0, CHECKOUT)], [], [100.0, 200.0]) == []
    left = detect(w, [page(5000, "https://shop.example/")], [], [])
    assert kinds(left) == ["abandon"] and left[0].data["url"] == CHECKOUT
    # submitted: not abandoned
    w = Watch()
    submit = RecordingMark("submit", 300, {})
    assert detect(w, [page(0, CHECKOUT), submit, page(900)], [], [100.0]) == []
    # typing on another page: not a checkout
    assert detect(Watch(), [page(0), page(900, CHECKOUT)], [], [100.0]) == []


def test_a_batch_adds_at_most_twenty_signals() -> None:
    errors = [RecordingMark("error", i, {"message": "boom"}) for i in range(100)]
    assert len(detect(Watch(), errors, [], [])) == 20
