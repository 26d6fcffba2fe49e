"""The replay bundle's end of a recording, in Chromium (widget/src/replayer-finish.js).

rrweb says "finish" 50 ms after it casts the last event, from a timer nothing
cancels: a ``play(at)`` in between got the old run's finish, which stopped the
new run at once and told the page it had finished.  That is what an agent
saw who clicked the rewind's rage-click marker as the rewind reached its end
(test_signals_browser's walk, now and then on a loaded machine).  Here the
click comes at the worst moment, every time: in the same task as the last
event's cast.  No server: the bundle as built, on a blank page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext

import chatserver

from ..in_process.test_recordings import meta, move
from .test_replay_nav_browser import page_snapshot

pytestmark = pytest.mark.browser

BUNDLE = Path(chatserver.__file__).parent / "widget_build" / "replay.js"

PLAY_AGAIN_AT_THE_END = """async (events) => {
  const box = document.getElementById("view");
  const view = window.chatserverReplay.createReplayer(box, { live: false, events });
  const r = view.replayer;
  const end = events[events.length - 1].timestamp;
  const log = [];
  view.onFinish(() => log.push(["told", performance.now()]));
  let ended;
  const lastCast = new Promise((resolve) => { ended = resolve; });
  r.on("event-cast", (e) => {
    if (e.timestamp === end) { log.push(["last", performance.now()]); ended(); }
  });
  r.play(0);
  await lastCast;  // the finish timer of this run is pending (it fires 50 ms after the cast)
  const again = performance.now();
  r.play(100);  // a marker clicked: from 100 ms in, 500 ms of recording to play
  const deadline = again + 3000;
  while (!log.some(([what, t]) => what === "told" && t > again) && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { again, log, at: r.getCurrentTime() };
}"""


def test_a_play_just_after_the_end_plays_to_the_end(context: BrowserContext) -> None:
    if not BUNDLE.exists():
        pytest.skip("the widget is not built (scripts/setup)")
    page = context.new_page()
    page.set_content('<!doctype html><html><body><div id="view"></div></body></html>')
    page.add_script_tag(path=str(BUNDLE))
    t0 = 1_700_000_000_000.0
    events: list[dict[str, Any]] = [meta(t0), page_snapshot(t0, "Checkout")]
    events += [move(t0 + ms) for ms in range(100, 700, 100)]  # the last one 600 ms in
    out = page.evaluate(PLAY_AGAIN_AT_THE_END, events)
    again = out["again"]
    after = [(what, t) for what, t in out["log"] if t > again]
    told = [t for what, t in after if what == "told"]
    # Told once, when the second run had played its 500 ms (not the first run's
    # finish 50 ms into it), and that run did reach the last event.
    assert len(told) == 1, out
    assert told[0] - again >= 500, out
    assert ("last" in (what for what, _ in after)) and out["at"] >= 600, out
    assert [what for what, t in out["log"] if t <= again] == ["last"]  # the first run: not told
