// The call-gap (paper §12): drop ("gap") requests from a client that asks too often, measured per client in
// its MRU record. Two forms:
//
// "rules" (the paper's NTPv4 scheme, the default):
//   Rule 1. A request less than `minimum` seconds (2), less a `tolerance` (0.5) for the clients' timers,
//           after the previous one from that address is gapped: below 1.5 s by default.
//   Rule 2. While the client's exponentially averaged interval is below `average` seconds (5), its requests
//           are gapped.
//   The average is the MRU record's avgInterval, kept by MruList.touchLocked over every packet, gapped or
//   not: it is seeded with the first interval, then avg += (interval - avg) / 2^k with k = averageShift
//   (default 3). Gapped packets count because the paper's average is "between packets": a client that keeps
//   firing into the gap keeps its average low. k = 3 gives the average a memory of about eight intervals:
//   one 64 s poll after an iburst (avg 2 s) lifts it to 9.75 s, so a well-behaved client recovers at once,
//   while a 1 s elephant must stay silent for about half a minute before Rule 2 lets it through again.
//   A power of two keeps the arithmetic exact for the simulator's differential tests.
//
//   Tolerance. chrony's and ntpd's iburst sends its requests about 2 s apart, and "about" is the point:
//   scheduling jitter, and NTPsec's one-second timer, put some of them a little under 2 s. Rule 1 is meant
//   for clients firing at well under the paper's 2 s, not for those, so it gaps an interval only below
//   `minimum - tolerance`.
//
//   Start-up allowance (`burst`, 8): an iburst passes Rule 1 but would be gapped by Rule 2 (its average is
//   2 s), and a client that gets no answers at start-up retries harder, which is how the Wisconsin routers
//   melted a network (§3). So each record holds a credit: a new client starts with `burst` (its first
//   request spends one), a request that Rule 2 would gap is answered instead while a credit is left, and
//   credit is earned back only by quiet intervals (one credit per `average` seconds of an interval that is
//   itself at least `average` long, up to `burst`). A polite client therefore gets a full allowance back
//   after one normal poll; an elephant firing faster than `average` never earns any. The allowance exempts
//   Rule 2 only: a start-up burst of any spacing would otherwise be exempt too, and every burstmaker of §5
//   that lasts under `burst` packets would never be gapped.
//
//   Fast allowance (`fast`, 3): measurement tools send a few requests back to back, each as soon as the
//   previous reply arrives (RIPE Atlas probes send 3; monitoring checks do the same). ntpd's 2 s guard
//   answers the second with a RATE kiss and ignores the third, a known complaint against it. So a record
//   with no bad history holds `fast` requests, the first of the burst included, that are answered whatever
//   their spacing (exempt from both rules). The first request of a burst is no faster than any other, so it
//   is charged only when a fast request follows it: the second request of a burst spends two, each later one
//   one. A gapped request (bad history: whatever the rules caught since the last quiet period, kissed or
//   not, leaked or not) takes the whole allowance away; `fastQuiet` seconds (60) of silence give it back
//   whole. An elephant firing every second is never quiet for 60 s, so it never earns a fast request back,
//   and past both allowances Rule 1 holds: with leak 0, 8 requests 0.5 s apart get 3 answers.
//
// "token-bucket" (chrony's ratelimit form): each record holds tokens, earned at one per `interval` seconds
//   up to `burst`; a request spends one, and is gapped when none is left. Gapped requests spend nothing, so
//   an elephant is still answered at the bucket's rate, one per `interval`, whatever it sends.
//
// Leak (both forms). A gapped request is still answered with probability 1/2^leak, drawn from the caller's
// PRNG. Call-gap state is keyed by source address, which anyone can spoof: a flood carrying a victim's
// address would otherwise get the victim's own requests gapped for as long as the flood lasts. With a leak
// the victim still gets one answer in 2^leak, while the flood's amplification stays bounded by the same
// fraction. Default 2, as chrony's `leak` (docs/defences-mru.md says why this and not the paper's 0).
//
// Pure: state in, state out through the record's typed-array fields; time comes in as the interval the MRU
// touch just measured (mru.interval: read there rather than passed, because a double passed to a call that
// is not inlined is boxed, an allocation per packet). Call it under the MRU lock, right after touchLocked,
// for the same packet.

import { DefenceError } from "./errors.ts";
import { MRU_FLAG_LIMITED, type MruList } from "./mru.ts";
import type { Rng } from "./random.ts";

/** Options of the call-gap. Seconds throughout. */
export interface CallGapOptions {
  /** "rules" (paper §12, default) or "token-bucket" (chrony's ratelimit). */
  mode?: "rules" | "token-bucket";
  /** Rule 1: shortest interval between requests. */
  minimum?: number;
  /** Rule 1 gaps an interval only below `minimum - tolerance` (timer jitter); 0 to `minimum`. */
  tolerance?: number;
  /** Rule 2: lowest averaged interval; also the credit's earning period. */
  average?: number;
  /** Requests of a start-up burst that Rule 2 does not gap; the token bucket's size. */
  burst?: number;
  /** Requests of a measurement burst, its first included, that neither rule gaps (0 = none; at most 100). */
  fast?: number;
  /** Seconds of silence that give the fast allowance back whole (and forget a bad history). */
  fastQuiet?: number;
  /** Answer one gapped request in 2^leak anyway (0 = off; at most 16). */
  leak?: number;
  /** Token-bucket form: seconds per token (chrony's default interval 3 is 2^3 = 8 s). */
  interval?: number;
}

export const CALLGAP_DEFAULTS = Object.freeze({
  mode: "rules" as "rules" | "token-bucket",
  minimum: 2,
  tolerance: 0.5,
  average: 5,
  burst: 8,
  fast: 3,
  fastQuiet: 60,
  leak: 2,
  interval: 8,
});

/** Most `fast` requests: the allowance shares its byte in the MRU record with the run bit (below). */
export const CALLGAP_MAX_FAST = 100;

// The record's `fast` byte (MruList.fast): bits 0-6 the fast requests left, bit 7 set while the client is
// inside a fast burst (its previous request was fast too, so the burst's first request is already paid).
const FAST_LEFT = 0x7f;
const FAST_RUN = 0x80;

/** Validated options, ready for the hot path. */
export interface CallGapConfig {
  readonly tokenBucket: boolean;
  readonly minimum: number;
  readonly tolerance: number;
  /** minimum - tolerance: Rule 1 gaps an interval below this, and such a request is a fast one. */
  readonly gapBelow: number;
  readonly average: number;
  readonly burst: number;
  readonly fast: number;
  readonly fastQuiet: number;
  readonly leak: number;
  readonly interval: number;
}

// Results. PASS* are answered, GAP_* dropped (or kissed: see kod-limiter.ts).
/** Not limited. */
export const GAP_PASS = 0;
/** Rule 2 would gap it; answered from the start-up (burst) allowance. */
export const GAP_PASS_BURST = 1;
/** Gapped, but answered by the random leak. */
export const GAP_PASS_LEAK = 2;
/** Rule 1 would gap it; answered from the fast (measurement burst) allowance. */
export const GAP_PASS_FAST = 3;
/** Gapped by Rule 1: less than `minimum - tolerance` after the previous request. */
export const GAP_MINIMUM = 4;
/** Gapped by Rule 2: averaged interval below `average`. */
export const GAP_AVERAGE = 5;
/** Gapped by the token bucket: no token left. */
export const GAP_RATE = 6;

export const GAP_RESULT_NAMES: readonly string[] = Object.freeze([
  "pass",
  "pass_burst",
  "pass_leak",
  "pass_fast",
  "gap_minimum",
  "gap_average",
  "gap_rate",
]);

/** Whether a callGap result means the request is not answered. */
export function isGapped(result: number): boolean {
  return result >= GAP_MINIMUM;
}

function bad(message: string): never {
  throw new DefenceError("ERR_DEFENCE_OPTION", message);
}

/** Validates options and fills in defaults. */
export function createCallGap(options: CallGapOptions = {}): CallGapConfig {
  const mode = options.mode ?? CALLGAP_DEFAULTS.mode;
  const minimum = options.minimum ?? CALLGAP_DEFAULTS.minimum;
  const tolerance = options.tolerance ?? CALLGAP_DEFAULTS.tolerance;
  const average = options.average ?? CALLGAP_DEFAULTS.average;
  const burst = options.burst ?? CALLGAP_DEFAULTS.burst;
  const fast = options.fast ?? CALLGAP_DEFAULTS.fast;
  const fastQuiet = options.fastQuiet ?? CALLGAP_DEFAULTS.fastQuiet;
  const leak = options.leak ?? CALLGAP_DEFAULTS.leak;
  const interval = options.interval ?? CALLGAP_DEFAULTS.interval;
  if (mode !== "rules" && mode !== "token-bucket") bad('mode must be "rules" or "token-bucket"');
  if (!(minimum >= 0 && Number.isFinite(minimum))) bad("minimum must be a number of seconds >= 0");
  if (!(tolerance >= 0 && tolerance <= minimum)) bad("tolerance must be from 0 to minimum seconds");
  if (!(average > 0 && Number.isFinite(average))) bad("average must be a number of seconds > 0");
  if (!(Number.isInteger(burst) && burst >= 1 && burst <= 1_000_000)) bad("burst must be an integer >= 1");
  if (!(Number.isInteger(fast) && fast >= 0 && fast <= CALLGAP_MAX_FAST)) {
    bad(`fast must be an integer from 0 to ${CALLGAP_MAX_FAST}`);
  }
  if (!(fastQuiet > 0 && Number.isFinite(fastQuiet))) bad("fastQuiet must be a number of seconds > 0");
  if (!(Number.isInteger(leak) && leak >= 0 && leak <= 16)) bad("leak must be an integer from 0 to 16");
  if (!(interval > 0 && Number.isFinite(interval))) bad("interval must be a number of seconds > 0");
  return Object.freeze({
    tokenBucket: mode === "token-bucket",
    minimum,
    tolerance,
    gapBelow: minimum - tolerance,
    average,
    burst,
    fast,
    fastQuiet,
    leak,
    interval,
  });
}

/**
 * Decides whether the request just recorded in record `r` (-1: the MRU refused it) is gapped, updating the
 * record's credits, gapped count and flags, from mru.interval as the touch that returned `r` left it.
 * Returns a GAP_* code. Caller holds the MRU lock, taken before that touch. Allocation-free.
 */
export function callGap(cfg: CallGapConfig, mru: MruList, r: number, rng: Rng): number {
  // No record, no history: nothing to measure, so nothing to gap (the MRU counts the refusal).
  if (r < 0) return GAP_PASS;
  const interval = mru.interval;
  const credit = mru.credit;
  let result: number;
  if (cfg.tokenBucket) {
    const tokens = interval === Number.POSITIVE_INFINITY ? cfg.burst : credit[r]! + interval / cfg.interval;
    const capped = Math.min(tokens, cfg.burst);
    if (capped >= 1) {
      credit[r] = capped - 1;
      return GAP_PASS;
    }
    credit[r] = capped;
    result = GAP_RATE;
  } else {
    const fast = mru.fast;
    if (interval === Number.POSITIVE_INFINITY) {
      // A new client: nothing to measure yet; its first request spends one credit of a full start-up
      // allowance, and may be the first of a measurement burst, paid for only if a fast request follows.
      credit[r] = cfg.burst - 1;
      fast[r] = cfg.fast;
      return GAP_PASS;
    }
    let c = credit[r]!;
    if (interval >= cfg.average) {
      c += interval / cfg.average;
      if (c > cfg.burst) c = cfg.burst;
    }
    const f = fast[r]!;
    if (interval < cfg.gapBelow) {
      // Rule 1 would gap it. From the fast allowance if enough is left: two for a burst's second request
      // (the first is paid now), one for each later one. Rule 2 is not asked: a burst's average is its
      // spacing, and the allowance exists precisely to answer such a burst whole.
      let have = f & FAST_LEFT;
      if (have > cfg.fast) have = cfg.fast; // a reload lowered `fast`: at once
      const left = have - ((f & FAST_RUN) !== 0 ? 1 : 2);
      credit[r] = c;
      if (left >= 0) {
        fast[r] = left | FAST_RUN;
        return GAP_PASS_FAST;
      }
      result = GAP_MINIMUM;
    } else {
      // Not fast: the end of any fast burst, and maybe the first request of the next. After a quiet period
      // the fast allowance is whole again, whatever the history before it.
      const nf = interval >= cfg.fastQuiet ? cfg.fast : f & FAST_LEFT;
      if (mru.avgInterval[r]! >= cfg.average) {
        credit[r] = c;
        fast[r] = nf;
        return GAP_PASS;
      }
      if (c >= 1) {
        credit[r] = c - 1;
        fast[r] = nf;
        return GAP_PASS_BURST;
      }
      credit[r] = c;
      result = GAP_AVERAGE;
    }
    // Gapped: a bad history, no fast allowance until a quiet period (leaked or not, kissed or not).
    fast[r] = 0;
  }
  if (cfg.leak > 0 && rng() >>> (30 - cfg.leak) === 0) return GAP_PASS_LEAK;
  const g = mru.gapped[r]!;
  if (g !== 0xffffffff) mru.gapped[r] = g + 1;
  mru.flags[r]! |= MRU_FLAG_LIMITED;
  return result;
}
