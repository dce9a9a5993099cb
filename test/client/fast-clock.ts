// A ClientClock for running the real client shell (src/client/client.ts) against real servers in compressed
// time: the monotonic clock is virtual and jumps to each timer's due time at once, while the wall clock
// (the timestamps of the exchanges) and the reply waits stay real. Hours of the client's schedule then go
// by in milliseconds, and a real server sees the requests back to back, which is what makes NTPsec's
// ntpd send real RATE kisses to a client that is, in its own time, polite.

import type { ClientClock } from "../../src/client/client.ts";

export interface FastClock extends ClientClock {
  /** Virtual seconds elapsed. */
  readonly virtual: number;
}

export function fastClock(): FastClock {
  let v = 0;
  const clock: FastClock = {
    get virtual() {
      return v;
    },
    now: () => v,
    wallMs: () => performance.timeOrigin + performance.now(),
    setTimer: (fn, ms) =>
      setImmediate(() => {
        v += ms / 1000;
        fn();
      }),
    clearTimer: (h) => clearImmediate(h as NodeJS.Immediate),
  };
  return clock;
}
