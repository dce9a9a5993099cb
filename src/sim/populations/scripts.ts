// SNTP clients run from scripts (paper §2, §4). "They can be run manually or from a script" (§2). At USNO
// the traffic "peaks at 7,000 PPS on or about the hour and drops back to 5,000 PPS between the hours.
// Apparently a large number of clients are run from hourly scripts. A simple way to amortize the peaks
// would be to stagger the scripts over the hour" (§4).
//
// Each script host runs its script once a period (an hour): in the "hourly" form at the top of the hour
// of its own clock, which is off by up to `skew` seconds (cron starts jobs on the minute, and the hosts'
// clocks, which these scripts are there to set, are not exact); in the "staggered" form at a fixed random
// moment of the hour. A run sends one request and, unanswered, retries after `timeout` up to `retries`
// times. SNTP clients of the time did not implement kiss-o'-death (§11), so by default a kiss is treated
// as no answer; with obeyKod, RATE ends the run and DENY/RSTR stops the script for good (RFC 4330 §10).

import { Clients, KISS_SLOW_DOWN, KISS_STOP, OUT_ANSWERED, type PopulationContext } from "../population.ts";

export interface SntpScriptsOptions {
  /** Script hosts (default 100,000). */
  count?: number;
  /** "hourly" (cron on the hour, default) or "staggered" (spread over the period). */
  schedule?: "hourly" | "staggered";
  /** Seconds between runs (default 3,600). */
  period?: number;
  /** Hourly form: each host's clock is late by a fixed amount uniform in [0, skew) s (default 60). */
  skew?: number;
  /** Retries of an unanswered request in one run (default 2). */
  retries?: number;
  /** Seconds to wait for an answer before retrying (default 5). */
  timeout?: number;
  /** Whether they obey kiss-o'-death (default false: §11, SNTP clients did not). */
  obeyKod?: boolean;
}

export class SntpScripts extends Clients {
  readonly description: string;
  readonly o: Required<SntpScriptsOptions>;
  private readonly runStart: Float64Array;
  private readonly offset: Float64Array;
  private readonly attempt: Uint8Array;
  private readonly port: Uint16Array;
  private now = 0;

  constructor(name: string, o: SntpScriptsOptions = {}) {
    super(name, "sntp-scripts", o.count ?? 100_000);
    const count = this.slots;
    const schedule = o.schedule ?? "hourly";
    if (schedule !== "hourly" && schedule !== "staggered") {
      throw new RangeError(
        `${name}.schedule must be "hourly" or "staggered", got ${JSON.stringify(schedule)}`,
      );
    }
    const period = this.param("period", o.period ?? 3600, 1);
    this.o = {
      count,
      schedule,
      period,
      skew: this.param("skew", o.skew ?? 60, 0, period),
      retries: this.intParam("retries", o.retries ?? 2, 0, 100),
      timeout: this.param("timeout", o.timeout ?? 5, 0.01, period),
      obeyKod: o.obeyKod ?? false,
    };
    this.description =
      schedule === "hourly"
        ? "SNTP scripts run from cron on the hour (§4)"
        : "SNTP scripts staggered over the hour (§4's remedy)";
    this.runStart = new Float64Array(count);
    this.offset = new Float64Array(count);
    this.attempt = new Uint8Array(count);
    this.port = new Uint16Array(count);
  }

  /** Average packets per second when every first request is answered. */
  get rate(): number {
    return this.o.count / this.o.period;
  }

  override params(): Record<string, unknown> {
    return { ...super.params(), rate: this.rate };
  }

  protected start(ctx: PopulationContext): void {
    const { period, skew, schedule } = this.o;
    // Seconds from t = 0 to the first period boundary of the virtual clock (the top of an hour).
    const startS = ctx.startMs / 1000;
    const firstBoundary = (period - (startS % period)) % period;
    for (let i = 0; i < this.o.count; i++) {
      const off = schedule === "hourly" ? this.rnd.float() * skew : this.rnd.float() * period;
      this.offset[i] = off;
      this.port[i] = this.randomPort();
      const first = (firstBoundary + off) % period;
      this.runStart[i] = first;
      ctx.schedule(i, first);
    }
  }

  override replyWait(_slot: number): number {
    return Math.min(1, 0.9 * this.o.timeout);
  }

  emit(slot: number, _t: number): boolean {
    return this.sendFrom(slot, this.port[slot]!);
  }

  private nextRun(slot: number): number {
    this.attempt[slot] = 0;
    let next = this.runStart[slot]! + this.o.period;
    // Retries that outlast a period skip the runs they overlap.
    while (next <= this.now) next += this.o.period;
    this.runStart[slot] = next;
    return next;
  }

  react(slot: number, t: number, outcome: number): number {
    this.now = t;
    if (outcome === OUT_ANSWERED) return this.nextRun(slot);
    const action = this.kissReply(outcome, this.o.obeyKod);
    if (action === KISS_STOP) return Number.POSITIVE_INFINITY;
    if (action === KISS_SLOW_DOWN) return this.nextRun(slot);
    if (this.attempt[slot]! < this.o.retries) {
      this.attempt[slot]!++;
      return t + this.o.timeout;
    }
    return this.nextRun(slot);
  }
}
