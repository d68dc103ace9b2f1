/**
 * Noticing that this process was paused (a GC pause, SIGSTOP, an event loop
 * blocked by a handler). A paused consumer misses its heartbeats, and the
 * broker closes its connection and gives its deliveries to other consumers;
 * but the process reads what was already on its way before it reads the
 * close: a frozen process typically waits in the poll phase of its event
 * loop, so on resume it parses the deliveries in its socket before any timer
 * runs or the close is seen. Starting those jobs would run them a second time.
 *
 * One timer per process records when the event loop last ran timers, and
 * when it last found that it had not run them for a while: a pause. A
 * consumer holds what arrives on a channel while a pause is under way or came
 * after the channel's last proof, and a job that waited through a pause does
 * not start, until a round trip on the channel proves the connection still
 * open (consumer.ts, runner.ts).
 *
 * @module
 */

/** How often the watch records that the event loop runs. */
const TICK_MS = 200;

/**
 * A delivery handled after the event loop ran no timers for this long is
 * proven by a round trip before it starts (the broker closes a connection
 * after about two missed heartbeats, 2 s at the smallest useful heartbeat).
 */
export const PAUSE_SUSPECT_MS = 1000;

let lastRan = performance.now();
let lastPause = Number.NEGATIVE_INFINITY;
let timer: ReturnType<typeof setInterval> | undefined;
let users = 0;

/** Start watching (one timer per process, shared); call the returned function to stop using it. */
export function watchPauses(): () => void {
  users++;
  if (timer === undefined) {
    lastRan = performance.now();
    timer = setInterval(() => {
      const now = performance.now();
      if (now - lastRan - TICK_MS >= PAUSE_SUSPECT_MS) lastPause = now;
      lastRan = now;
    }, TICK_MS);
    timer.unref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--users === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

/**
 * Whether this process may have been paused since `since` (monotonic ms): a
 * pause is under way (no timers ran for {@link PAUSE_SUSPECT_MS}: the process
 * resumed and handles I/O before timers), or one ended after `since`.
 */
export function pausedSince(since: number): boolean {
  return performance.now() - lastRan - TICK_MS >= PAUSE_SUSPECT_MS || lastPause > since;
}
