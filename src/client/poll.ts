// When a client sends its next request to one server: the timing rules of a client that behaves (paper §2,
// §3, §4, §11; RFC 4330 §10, RFC 5905 §7.3 and §13, RFC 8633 §3.4). Pure: no clock, no timer; each method
// is told what happened and returns the delay, in seconds, until the next request. Randomness comes in as
// an argument (random.ts).
//
// The rules, and the incident each one answers:
//
// - Interval. It starts at `minpoll` (64 s) and doubles after every `stableSamples` (4) consecutive valid
//   replies whose offsets agree within `stepThreshold`, up to `maxpoll` (1024 s): "begins by sending one
//   packet per minute and then retreats to one packet every fifteen minutes" (§2, §4). A sample that jumps
//   sends it back to the current floor, so an unstable server is watched more closely.
// - Floor. No interval is ever below POLL_FLOOR_S (15 s), whatever the options say: options below it are
//   raised (and resolveOptions says so), and the jittered delay is clamped. RFC 5905's MINPOLL is 16 s;
//   15 s leaves room for the jitter. The start-up burst is the one, bounded, exception below.
// - Random start. The first request goes out after a uniform random delay in [0, startSpread) (default
//   64 s, at least 1 s). Clients started together, by a power cut or by an hourly script, then spread over
//   the spread instead of arriving in the same second (the USNO peak "on or about the hour", §4).
// - Jitter. Every interval is multiplied by a uniform factor in [1 - jitter, 1 + jitter] (default ±10%,
//   at least ±5%), so two clients that happened to start in the same second drift apart instead of
//   arriving together for ever.
// - A new phase at each longer interval. Clients started together go through the same schedule (four
//   polls at 64 s, four at 128 s, ...): if each simply doubled its interval, their phases, spread over the
//   first 64 s, would stay within 64 s of each other while the period grows to 1024 s, and the whole
//   population would arrive within a sixteenth of every period, 16 times the mean rate (our simulation of
//   10,000 clients found 7 times with ±10% jitter alone). So whenever the interval grows to J (by
//   stability or backoff), the delay before the first request at J is uniform in [J/2, 3J/2): J on
//   average, never shorter than the interval before, and a phase drawn afresh over a whole period.
// - Backoff. A request that is not answered, or answered with nothing usable (an unsynchronised server, a
//   kiss code that is only informative), doubles the interval up to maxpoll: the Wisconsin routers retried
//   every second when the server went quiet and melted a campus network (§3). A valid reply ends the
//   backoff and returns to the interval earned by stability.
// - Burst. Only if configured (`burst` extra requests, at most 7, like ntpd's iburst of 8), only at start,
//   and only while the server answers: the extra requests follow each valid reply after 2-3 s, and the
//   first failure or kiss-o'-death ends the burst for good. A server that does not answer never sees one.
// - RATE kiss-o'-death (§11, RFC 5905 §7.4). The next interval becomes at least the larger of the
//   server's poll (2^poll in the kiss, when in RFC 5905's 16 s-36 h range) and twice the current interval;
//   that value J becomes this server's floor for the rest of the run (also above maxpoll if need be, up to
//   RFC 5905's MAXPOLL of 36 h), the burst stops, and the delay before the next request is uniform in
//   [J, 2J): at least J, with a fresh phase (a server that kisses everyone at once would otherwise see
//   them all come back together).

import { ClientError } from "./errors.ts";
import type { Random } from "./random.ts";

/** No interval below this, whatever the configuration (the burst excepted). */
export const POLL_FLOOR_S = 15;
/** RFC 5905 MAXPOLL: 2^17 s, about 36 hours. The ceiling of every interval, even after RATE kisses. */
export const POLL_CEILING_S = 2 ** 17;
/** Spacing of the start-up burst: 2 s plus a uniform 0-1 s, so a server's 2 s call-gap (§12) never bites. */
export const BURST_SPACING_S = 2;
/** The most extra requests a burst may have (ntpd's iburst sends 8 in all). */
export const BURST_MAX = 7;
/** The least jitter every interval carries. */
export const JITTER_MIN = 0.05;
/** The most jitter an interval may carry: beyond this the schedule would be noise. */
export const JITTER_MAX = 0.5;

export interface PollOptions {
  /** First and lowest interval, seconds (default 64; raised to 15 if lower). */
  minpoll: number;
  /** Highest interval reached by stability or backoff, seconds (default 1024; at least minpoll). */
  maxpoll: number;
  /** Each interval is multiplied by a uniform factor in [1 - jitter, 1 + jitter] (default 0.1). */
  jitter: number;
  /** The first request goes out after a uniform delay in [0, startSpread) seconds (default 64, >= 1). */
  startSpread: number;
  /** Extra requests of the start-up burst, sent while the server answers (default 0: no burst; <= 7). */
  burst: number;
  /** Consecutive stable samples before the interval doubles (default 4). */
  stableSamples: number;
  /** Two successive offsets further apart than this (seconds) mean the server is not stable (default 0.128). */
  stepThreshold: number;
}

export const POLL_DEFAULTS: Readonly<PollOptions> = Object.freeze({
  minpoll: 64,
  maxpoll: 1024,
  jitter: 0.1,
  startSpread: 64,
  burst: 0,
  stableSamples: 4,
  stepThreshold: 0.128,
});

/** Options as used, and a sentence for each value that was raised or lowered to respect the rules. */
export interface ResolvedPollOptions {
  options: Readonly<PollOptions>;
  notices: string[];
}

function num(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ClientError("ERR_CLIENT_INVALID_OPTION", `${name} must be a number >= 0, got ${String(v)}`);
  }
  return v;
}

/**
 * Fills in defaults and applies the rules: minpoll and maxpoll within [15 s, 36 h] with maxpoll >=
 * minpoll, startSpread >= 1 s, jitter within [0.05, 0.5], burst an integer 0-7, stableSamples an integer
 * >= 1. A value outside is clamped and a notice says so; a value that is not a number >= 0 throws
 * ClientError ERR_CLIENT_INVALID_OPTION.
 */
export function resolvePollOptions(input: Partial<PollOptions> = {}): ResolvedPollOptions {
  const notices: string[] = [];
  const pick = (k: keyof PollOptions): number => num(k, input[k] ?? POLL_DEFAULTS[k]);
  const clamp = (name: string, v: number, lo: number, hi: number, unit: string, why: string): number => {
    if (v < lo) {
      notices.push(`${name} ${v}${unit} raised to ${lo}${unit} (${why})`);
      return lo;
    }
    if (v > hi) {
      notices.push(`${name} ${v}${unit} lowered to ${hi}${unit} (${why})`);
      return hi;
    }
    return v;
  };
  const minpoll = clamp(
    "minpoll",
    pick("minpoll"),
    POLL_FLOOR_S,
    POLL_CEILING_S,
    " s",
    "no interval is below 15 s",
  );
  const maxpoll = clamp(
    "maxpoll",
    pick("maxpoll"),
    minpoll,
    POLL_CEILING_S,
    " s",
    "at least minpoll, at most 36 h",
  );
  const jitter = clamp("jitter", pick("jitter"), JITTER_MIN, JITTER_MAX, "", "every interval carries jitter");
  const startSpread = clamp(
    "startSpread",
    pick("startSpread"),
    1,
    POLL_CEILING_S,
    " s",
    "the first request is at a random moment",
  );
  let burst = pick("burst");
  if (!Number.isInteger(burst))
    throw new ClientError("ERR_CLIENT_INVALID_OPTION", `burst must be an integer, got ${burst}`);
  burst = clamp("burst", burst, 0, BURST_MAX, "", "a burst is at most 8 requests in all");
  const stableSamples = pick("stableSamples");
  if (!Number.isInteger(stableSamples) || stableSamples < 1) {
    throw new ClientError(
      "ERR_CLIENT_INVALID_OPTION",
      `stableSamples must be an integer >= 1, got ${stableSamples}`,
    );
  }
  const stepThreshold = pick("stepThreshold");
  return {
    options: Object.freeze({ minpoll, maxpoll, jitter, startSpread, burst, stableSamples, stepThreshold }),
    notices,
  };
}

/**
 * One server's poll schedule. Create it with resolved options; then call `start` once, and after each
 * exchange exactly one of `valid`, `failed` or `rate`. Each returns the delay (seconds) until the next
 * request. The fields are readable for status displays and tests.
 */
export class PollSchedule {
  readonly options: Readonly<PollOptions>;
  /** The interval earned by stability, seconds. */
  pollS: number;
  /** The backoff interval while the server does not answer usefully; 0 when it does. */
  backoffS = 0;
  /** The lowest interval allowed: minpoll, raised by RATE kisses. */
  floorS: number;
  /** Consecutive stable samples at the current interval. */
  stable = 0;
  /** Extra burst requests still allowed; 0 once the burst is over or was never configured. */
  burstLeft: number;
  /** Whether the last delay returned was a burst spacing. */
  inBurst = false;
  private lastOffsetS: number | undefined;

  constructor(options: Readonly<PollOptions>) {
    this.options = options;
    this.pollS = options.minpoll;
    this.floorS = options.minpoll;
    this.burstLeft = options.burst;
  }

  /** The interval in force, before jitter: the earned interval, or the backoff while failing. */
  get intervalS(): number {
    return Math.max(this.pollS, this.backoffS);
  }

  /** maxpoll, or this server's floor when a RATE kiss raised it above. */
  get ceilingS(): number {
    return Math.max(this.options.maxpoll, this.floorS);
  }

  /** Delay before the very first request: uniform in [0, startSpread). */
  start(random: Random): number {
    return random() * this.options.startSpread;
  }

  /** A valid sample with this offset (seconds) arrived. */
  valid(offsetS: number, random: Random): number {
    this.backoffS = 0;
    const steady =
      this.lastOffsetS === undefined || Math.abs(offsetS - this.lastOffsetS) <= this.options.stepThreshold;
    this.lastOffsetS = offsetS;
    // Samples of the burst say nothing about stability over an interval: only polls count.
    const polled = !this.inBurst;
    let rose = false;
    if (steady && polled) {
      this.stable++;
      if (this.stable >= this.options.stableSamples && this.pollS < this.ceilingS) {
        this.pollS = Math.min(this.ceilingS, this.pollS * 2);
        this.stable = 0;
        rose = true;
      }
    } else if (!steady) {
      this.stable = 0;
      this.pollS = this.floorS;
    }
    if (this.burstLeft > 0) {
      this.burstLeft--;
      this.inBurst = true;
      return BURST_SPACING_S + random();
    }
    this.inBurst = false;
    return rose ? this.rephased(this.pollS, random) : this.jittered(this.pollS, random);
  }

  /** No reply, or nothing usable in it (unsynchronised server, informative kiss code, no address). */
  failed(random: Random): number {
    this.burstLeft = 0;
    this.inBurst = false;
    this.stable = 0;
    const before = this.intervalS;
    this.backoffS = Math.min(this.ceilingS, before * 2);
    return this.backoffS > before
      ? this.rephased(this.backoffS, random)
      : this.jittered(this.backoffS, random);
  }

  /**
   * A RATE kiss-o'-death. `serverPoll` is the poll field of the kiss (log2 s); it counts only within RFC
   * 5905's 4..17 (16 s to 36 h), since a kiss may carry anything there.
   */
  rate(serverPoll: number, random: Random): number {
    this.burstLeft = 0;
    this.inBurst = false;
    this.stable = 0;
    const asked = Number.isInteger(serverPoll) && serverPoll >= 4 && serverPoll <= 17 ? 2 ** serverPoll : 0;
    const next = Math.min(POLL_CEILING_S, Math.max(asked, 2 * this.intervalS));
    this.floorS = Math.max(this.floorS, next);
    this.pollS = Math.max(this.pollS, next);
    this.backoffS = 0;
    // "At least": uniform in [next, 2 next), a fresh phase.
    return next * (1 + random());
  }

  /** The first delay at a longer interval J: uniform in [J/2, 3J/2), a phase drawn over a whole period. */
  private rephased(baseS: number, random: Random): number {
    return Math.max(POLL_FLOOR_S, baseS * (0.5 + random()));
  }

  /** The interval multiplied by a uniform factor in [1 - jitter, 1 + jitter], never below the floor. */
  private jittered(baseS: number, random: Random): number {
    const d = baseS * (1 + this.options.jitter * (2 * random() - 1));
    return Math.max(POLL_FLOOR_S, d);
  }
}
