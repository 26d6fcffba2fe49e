// The end of a recorded replay, told only when it is the end (replayer.js).
//
// rrweb's Replayer says "finish" from a timer it sets when it casts the last
// event: 50 ms later, up to half a second more when that event is a pointer
// move. Nothing cancels that timer. A `play(at)` or `pause(at)` made in
// between (a marker clicked just as the replay reaches its end) gets the old
// run's finish: rrweb stops the new run and the page is told it has finished
// although it has just begun to play again.
//
// So every `play` starts a run (`pause(at)` plays too, then pauses); a finish
// counts only for the run that cast the last event. A late one is not passed
// on, and the run it stopped goes on from where it was (as rrweb itself
// resumes after a style sheet loads: `play(getCurrentTime())`).

/**
 * Watch `replayer` (not live) for its real finishes.
 * @param {import("@rrweb/replay").Replayer} replayer
 * @returns {(fn: () => void) => void} adds a listener, called once per real finish
 */
export function watchFinish(replayer) {
  /** @type {Set<() => void>} */
  const listeners = new Set();
  let run = 0;
  let ended = -1; // the run that cast the last event
  let told = -1; // the run whose finish was passed on
  let playing = false;
  const play = replayer.play.bind(replayer);
  replayer.play = (timeOffset) => {
    run += 1;
    play(timeOffset);
  };
  replayer.on("start", () => {
    playing = true;
  });
  replayer.on("pause", () => {
    playing = false;
  });
  replayer.on("event-cast", (/** @type {unknown} */ event) => {
    const events = replayer.service.state.context.events;
    if (event === events[events.length - 1]) ended = run;
  });
  replayer.on("finish", () => {
    if (ended !== run) {
      if (playing) play(replayer.getCurrentTime()); // an earlier run's: go on
      return;
    }
    playing = false;
    if (told === run) return;
    told = run;
    for (const fn of listeners) fn();
  });
  return (fn) => void listeners.add(fn);
}
