// The burstmakers of NIST (paper §5): clients that send at intervals of seconds for a while, then stop.
// "Of the 574 burstmakers, 15 were sending at rates greater than 1 PPS (28 PPS total), 253 sending at rates
// between 1 and 2 PPS (166 PPS total) and the remaining 36 sending at rates between 2 and 5 PPS (120 PPS
// total). [...] Of the 574 burstmakers, there were 379 that lasted less than one minute (214 PPS total), 189
// that lasted less than one hour (93 PPS total) and 6 that lasted over one day (6 PPS). The worst two had
// been sending 2 PPS for over two days."
//
// The two tables do not agree (docs/paper.md, §5): the rate bins hold 304 clients, not 574, the first bin
// ("greater than 1 PPS") overlaps the other two, and 253 clients "between 1 and 2 PPS" cannot total 166 PPS
// (0.66 PPS each). The duration table is consistent with everything else the paper says (574 clients, 313
// PPS, "bursters account for about 313 PPS"), so the default mix is the duration table: 379 clients whose
// bursts last 5-60 s at 214/379 = 0.56 PPS on average, 189 lasting 1-60 min at 93/189 = 0.49 PPS, and 6
// lasting one to three days at 1 PPS on average, two of them at 2 PPS ("the worst two"). Within a class a
// client's rate is the class mean times a uniform factor in [1 - spread, 1 + spread] (default 0.5), so
// every client's spacing stays under the survey's 5 s. The rate table is then an output: the survey of the
// simulated lists puts the clients in the paper's rate bins, beside the paper's counts (scenarios/nist.ts).
//
// The counts are the burstmakers active at any moment (a steady state: one that stops is replaced by a
// new client, with a new address, in the same class), and at t = 0 every one is already part-way through
// its burst, so a short survey window sees about that many. They ignore kiss-o'-death by default.

import {
  checkInt,
  checkParam,
  KISS_SLOW_DOWN,
  KISS_STOP,
  Population,
  type PopulationContext,
} from "../population.ts";

/** A class of burstmakers: how many, how fast, for how long. */
export interface BurstClass {
  label: string;
  /** Clients of the class active at any moment. */
  count: number;
  /** Mean rate of a client, packets per second. */
  rate: number;
  /** Rates of the class's clients in turn, instead of the mean with a spread (e.g. "the worst two"). */
  rates?: readonly number[];
  /** Burst length, seconds, uniform in [minDuration, maxDuration]. */
  minDuration: number;
  maxDuration: number;
}

/** §5's burstmakers at the three Boulder servers, by duration (see the file comment for why). */
export const PAPER_BURST_MIX: readonly BurstClass[] = Object.freeze([
  { label: "under a minute", count: 379, rate: 214 / 379, minDuration: 5, maxDuration: 60 },
  { label: "under an hour", count: 189, rate: 93 / 189, minDuration: 60, maxDuration: 3600 },
  {
    label: "over a day",
    count: 6,
    rate: 1,
    rates: [2, 2, 0.5, 0.5, 0.5, 0.5],
    minDuration: 86400,
    maxDuration: 3 * 86400,
  },
]);

/** §5's rate table as printed, for reports beside the survey's bins (it does not add up: see above). */
export const PAPER_RATE_TABLE: readonly { label: string; clients: number; pps: number }[] = Object.freeze([
  { label: "greater than 1 PPS", clients: 15, pps: 28 },
  { label: "between 1 and 2 PPS", clients: 253, pps: 166 },
  { label: "between 2 and 5 PPS", clients: 36, pps: 120 },
]);

export interface BurstmakersOptions {
  /** The classes (default PAPER_BURST_MIX). */
  mix?: readonly BurstClass[];
  /** Multiplies every count of the mix (default 1). */
  scale?: number;
  /** A client's rate is its class mean times a uniform factor in [1 - spread, 1 + spread] (default 0.5). */
  spread?: number;
  /** Relative jitter of each interval (default 0.05). */
  jitter?: number;
  /** Whether they obey kiss-o'-death (default false). */
  obeyKod?: boolean;
}

/** Splits round(total * scale) over the counts by largest remainder, so the parts sum to the total. */
export function apportion(counts: readonly number[], scale: number): number[] {
  const exact = counts.map((c) => c * scale);
  const total = Math.round(exact.reduce((a, b) => a + b, 0));
  const out = exact.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, i) => [e - Math.floor(e), i] as const)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left <= 0) break;
    out[i]!++;
    left--;
  }
  return out;
}

/** Addresses each slot cycles through: a stopped burstmaker is replaced by a new client. */
const ADDRESSES_PER_SLOT = 1024;

export class Burstmakers extends Population {
  readonly description = "burstmakers: §5's mix of burst durations and rates";
  readonly slots: number;
  readonly addresses: number;
  readonly mix: readonly BurstClass[];
  readonly scale: number;
  readonly spread: number;
  readonly jitter: number;
  readonly obeyKod: boolean;
  /** Active clients per class. */
  readonly perClass: readonly number[];
  private readonly cls: Uint8Array;
  /** Position of the slot within its class (picks from `rates`). */
  private readonly rank: Uint32Array;
  private readonly interval: Float64Array;
  private readonly end: Float64Array;
  private readonly gen: Uint32Array;
  private readonly port: Uint16Array;

  constructor(name: string, o: BurstmakersOptions = {}) {
    super(name);
    this.elephant = true;
    this.mix = o.mix ?? PAPER_BURST_MIX;
    if (this.mix.length === 0 || this.mix.length > 255)
      throw new RangeError(`${name}.mix must have 1 to 255 classes`);
    for (const c of this.mix) {
      checkParam(`${name} class "${c.label}" count`, c.count, 0);
      checkParam(`${name} class "${c.label}" rate`, c.rate, 1e-6, 10_000);
      checkParam(`${name} class "${c.label}" minDuration`, c.minDuration, 0.001);
      checkParam(`${name} class "${c.label}" maxDuration`, c.maxDuration, c.minDuration);
      for (const r of c.rates ?? []) checkParam(`${name} class "${c.label}" rates`, r, 1e-6, 10_000);
    }
    this.scale = this.param("scale", o.scale ?? 1, 0, 10_000);
    this.spread = this.param("spread", o.spread ?? 0.5, 0, 0.9);
    this.jitter = this.param("jitter", o.jitter ?? 0.05, 0, 0.5);
    this.obeyKod = o.obeyKod ?? false;
    this.perClass = apportion(
      this.mix.map((c) => c.count),
      this.scale,
    );
    this.slots = checkInt(
      `${name} slots`,
      this.perClass.reduce((a, b) => a + b, 0),
      0,
    );
    this.addresses = Math.max(1, this.slots * ADDRESSES_PER_SLOT);
    const n = this.slots;
    this.cls = new Uint8Array(n);
    this.rank = new Uint32Array(n);
    this.interval = new Float64Array(n);
    this.end = new Float64Array(n);
    this.gen = new Uint32Array(n);
    this.port = new Uint16Array(n);
    let s = 0;
    this.perClass.forEach((count, c) => {
      for (let k = 0; k < count; k++, s++) {
        this.cls[s] = c;
        this.rank[s] = k;
      }
    });
  }

  /** Mean offered rate, packets per second. */
  get rate(): number {
    let r = 0;
    this.perClass.forEach((count, c) => {
      const cl = this.mix[c]!;
      if (cl.rates && cl.rates.length > 0)
        for (let k = 0; k < count; k++) r += cl.rates[k % cl.rates.length]!;
      else r += count * cl.rate;
    });
    return r;
  }

  params(): Record<string, unknown> {
    return {
      kind: "burstmakers",
      scale: this.scale,
      classes: this.mix.map((c, i) => ({ ...c, active: this.perClass[i] })),
      spread: this.spread,
      jitter: this.jitter,
      obeyKod: this.obeyKod,
      rate: this.rate,
    };
  }

  /** A new client in slot `slot` from time t: its rate, how long it lasts (times `fractionLeft`), its port. */
  private begin(slot: number, t: number, fractionLeft: number): void {
    const c = this.mix[this.cls[slot]!]!;
    const rate =
      c.rates && c.rates.length > 0
        ? c.rates[this.rank[slot]! % c.rates.length]!
        : c.rate * this.jitterFactor(this.spread);
    this.interval[slot] = 1 / rate;
    this.end[slot] = t + this.rnd.uniform(c.minDuration, c.maxDuration) * fractionLeft;
    this.port[slot] = this.randomPort();
  }

  protected start(ctx: PopulationContext): void {
    const rnd = this.rnd;
    // Start in the steady state: every slot is somewhere in the middle of a burst.
    for (let s = 0; s < this.slots; s++) {
      this.begin(s, 0, rnd.float());
      ctx.schedule(s, rnd.float() * this.interval[s]!);
    }
  }

  override replyWait(slot: number): number {
    return Math.min(1, 0.9 * this.interval[slot]!);
  }

  emit(slot: number, _t: number): boolean {
    return this.sendFrom(
      slot * ADDRESSES_PER_SLOT + (this.gen[slot]! % ADDRESSES_PER_SLOT),
      this.port[slot]!,
    );
  }

  react(slot: number, t: number, outcome: number): number {
    const action = this.kissReply(outcome, this.obeyKod);
    if (action === KISS_SLOW_DOWN) this.interval[slot]! *= 2;
    const next = t + this.interval[slot]! * this.jitterFactor(this.jitter);
    if (action === KISS_STOP || next >= this.end[slot]!) {
      // This burstmaker is done; another client, with a fresh address, takes its place.
      this.gen[slot]!++;
      this.begin(slot, next, 1);
    }
    return next;
  }
}
