// The client's tests (test/client) share this: a measured sample from a plain stratum 2 server, for the
// parts that take samples (broadcast calibration, manycast's choice) without an exchange on the wire.

import type { Sample } from "../../src/client/measure.ts";

/** A sample taken at `atMs` (Unix ms) from a stratum 2 server, 1 ms away and agreeing with us, but for `o`. */
export function sample(atMs: number, o: Partial<Sample> = {}): Sample {
  return {
    offsetMs: 0,
    delayMs: 1,
    leap: 0,
    version: 4,
    stratum: 2,
    poll: 6,
    precision: -20,
    rootDelay: 0,
    rootDispersion: 0,
    refId: 0,
    atMs,
    ...o,
  };
}
