// The Wisconsin routers (paper §3). "If the configured time server could not be reached for some reason, the
// code would retry at 1-s intervals [...]. In addition, the server address was hard coded in the firmware
// and could not be changed. [...] the manufacturer sold 700,000 routers and they were all sending traffic to
// the Wisconsin server at the same time. As long as the server and network path were operating normally,
// the situation was tolerable; however, if not, the traffic from the router population could result in an
// unsustainable network traffic rate over 400 Mbps."
//
// A router polls its one hard-coded server every `poll` seconds while answered (the paper does not give
// this interval; 60 s is assumed, see docs/paper.md), and every `retry` second while unanswered. The
// defective firmware treats a kiss-o'-death as no answer (stratum 0 is not a time it can use) and retries
// a second later. The "fixed" firmware the paper's lessons ask for ("backing off the request rate when the
// server does not respond", §3; obeying KoD, §11) doubles its retry interval on each miss up to `maxBackoff`
// and obeys kisses: RATE doubles its poll, DENY/RSTR stops it.

import { Clients, KISS_SLOW_DOWN, KISS_STOP, OUT_ANSWERED, type PopulationContext } from "../population.ts";
import { MAX_POLL_SECONDS } from "./mice.ts";

export interface RoutersOptions {
  /** Routers (default 700,000, §3). */
  count?: number;
  /** Poll interval while answered, seconds (default 60: an assumption, the paper gives none). */
  poll?: number;
  /** Retry interval while unanswered, seconds (default 1, §3). */
  retry?: number;
  /** Back off exponentially when unanswered (default false: the defective firmware). */
  backoff?: boolean;
  /** Longest back-off, seconds (default 1,024). */
  maxBackoff?: number;
  /** Obey kiss-o'-death (default false). */
  obeyKod?: boolean;
  /** Index of the hard-coded server (default 0). */
  server?: number;
  /** First polls spread uniformly over [startAt, startAt + startWithin) s (default: the poll: a steady state). */
  startWithin?: number;
  /** When they are switched on, seconds from the start of the run (default 0: already on). */
  startAt?: number;
}

/** The routers' one source port: every router used the same, which is how the ISP could filter them (§3). */
export const ROUTER_PORT = 23457;

export class Routers extends Clients {
  readonly description: string;
  readonly o: Required<RoutersOptions>;
  private readonly misses: Uint16Array;
  private readonly poll: Float64Array;

  constructor(name: string, o: RoutersOptions = {}) {
    super(name, "routers", o.count ?? 700_000);
    this.elephant = true;
    const count = this.slots;
    this.o = {
      count,
      poll: this.param("poll", o.poll ?? 60, 0.01, MAX_POLL_SECONDS),
      retry: this.param("retry", o.retry ?? 1, 0.01, 3600),
      backoff: o.backoff ?? false,
      maxBackoff: this.param("maxBackoff", o.maxBackoff ?? 1024, 0.01, MAX_POLL_SECONDS),
      obeyKod: o.obeyKod ?? false,
      server: this.intParam("server", o.server ?? 0, 0, 1023),
      startWithin: this.param("startWithin", o.startWithin ?? o.poll ?? 60, 0),
      startAt: this.param("startAt", o.startAt ?? 0, 0),
    };
    this.server = this.o.server;
    this.description =
      this.o.backoff || this.o.obeyKod
        ? "routers with fixed firmware: back off when unanswered, obey KoD"
        : "defective routers (§3): hard-coded server, retry every second while unanswered";
    this.misses = new Uint16Array(count);
    this.poll = new Float64Array(count);
  }

  protected start(ctx: PopulationContext): void {
    this.poll.fill(this.o.poll);
    const { startAt, startWithin } = this.o;
    for (let i = 0; i < this.o.count; i++) ctx.schedule(i, startAt + this.rnd.float() * startWithin);
  }

  override replyWait(_slot: number): number {
    return Math.min(1, 0.9 * this.o.retry);
  }

  emit(slot: number, _t: number): boolean {
    return this.sendFrom(slot, ROUTER_PORT);
  }

  react(slot: number, t: number, outcome: number): number {
    const o = this.o;
    // A little jitter so that a population started together does not stay in lock step for ever.
    const j = this.jitterFactor(0.02);
    if (outcome === OUT_ANSWERED) {
      this.misses[slot] = 0;
      return t + this.poll[slot]! * j;
    }
    const action = this.kissReply(outcome, o.obeyKod);
    if (action === KISS_STOP) return Number.POSITIVE_INFINITY;
    if (action === KISS_SLOW_DOWN) {
      this.misses[slot] = 0;
      this.poll[slot] = Math.min(this.poll[slot]! * 2, MAX_POLL_SECONDS);
      return t + this.poll[slot]! * j;
    }
    if (!o.backoff) return t + o.retry * j;
    const m = this.misses[slot]!;
    if (m < 60) this.misses[slot] = m + 1;
    return t + Math.min(o.retry * 2 ** m, o.maxBackoff) * j;
  }
}
