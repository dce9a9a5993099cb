// What the server says about its own clock in every reply (RFC 5905 §7.3 system variables). The shell owns
// one of these per worker and replaces fields when the clock source changes; the core only reads it.

export interface ServeState {
  /** Leap indicator; 3 (alarm) whenever the server cannot vouch for its time. */
  leap: number;
  /** Stratum on the wire: 1-15 when synchronised, 16 when not (RFC 5905 Figure 11). */
  stratum: number;
  /** log2 seconds, measured at start or configured. */
  precision: number;
  /** Root delay and dispersion in seconds, at refTimeMs. */
  rootDelay: number;
  rootDispersion: number;
  /** Dispersion growth in s/s after refTimeMs: RFC 5905's PHI (15 ppm) when following an upstream. */
  dispersionRate: number;
  refId: number;
  /** When the clock was last updated from its reference, Unix ms. */
  refTimeMs: number;
  /** Added to the system clock when stamping replies (the measured upstream offset, or 0). */
  offsetMs: number;
  /** Answer mode 1 from unknown peers in mode 2 (see docs/configuration.md, [server] answer-symmetric). */
  answerSymmetric: boolean;
}

export const STRATUM_UNSYNCHRONISED = 16;

export function unsynchronisedState(precision: number, answerSymmetric: boolean): ServeState {
  return {
    leap: 3,
    stratum: STRATUM_UNSYNCHRONISED,
    precision,
    rootDelay: 0,
    rootDispersion: 0,
    dispersionRate: 0,
    refId: 0,
    refTimeMs: 0,
    offsetMs: 0,
    answerSymmetric,
  };
}
