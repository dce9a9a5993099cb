// A wall clock for the hot path. Date.now() has only millisecond resolution and process.hrtime() allocates,
// so replies are stamped with performance.now() (microseconds, no allocation) plus an offset to UTC.
//
// performance.now() counts CLOCK_MONOTONIC, which the kernel slews together with the wall clock but never
// steps; so the offset stays right until someone steps the system clock. The main thread measures it
// again every few seconds (calibrate) and hands it to the workers, which are then at most that long behind a
// step. The measurement waits for Date.now() to tick over to the next millisecond, which places the tick
// within a microsecond or so of a performance.now() reading.

import { performance } from "node:perf_hooks";

/**
 * Measures `Date.now() - performance.now()` at a millisecond tick: the value that, added to
 * performance.now() in THIS thread, gives Unix milliseconds.
 */
export function measureWallOffset(): number {
  // Spin at most ~2 ms (two ticks) and keep the reading taken closest after a tick.
  const start = Date.now();
  let wall = start;
  let mono = performance.now();
  const limit = mono + 3;
  while (wall === start && mono < limit) {
    wall = Date.now();
    mono = performance.now();
  }
  return wall - mono;
}

/**
 * Converts between threads: performance.now() has a different origin in each worker, but
 * performance.timeOrigin + performance.now() follows the same monotonic clock in all of them (to within the
 * rounding of timeOrigin). The main thread publishes `wall - (timeOrigin + now)`.
 */
export function measureSharedOffset(): number {
  return measureWallOffset() - performance.timeOrigin;
}

export class WallClock {
  private offset: number;

  constructor(sharedOffset: number = measureSharedOffset()) {
    this.offset = sharedOffset + performance.timeOrigin;
  }

  setSharedOffset(sharedOffset: number): void {
    this.offset = sharedOffset + performance.timeOrigin;
  }

  /** Unix time in milliseconds with a fractional part (sub-microsecond resolution). */
  now(): number {
    return performance.now() + this.offset;
  }
}

/**
 * RFC 5905 precision: log2 of the smallest step the clock can be read in, measured as the smallest
 * non-zero difference between successive readings (never better than one microsecond is claimed).
 */
export function measurePrecision(samples = 2000): number {
  let best = Number.POSITIVE_INFINITY;
  let last = performance.now();
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const d = t - last;
    if (d > 0 && d < best) best = d;
    last = t;
  }
  const seconds = Math.max(best / 1000, 1e-6);
  return Math.max(-32, Math.min(0, Math.ceil(Math.log2(seconds))));
}
