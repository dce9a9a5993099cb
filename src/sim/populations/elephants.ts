// Elephants at a fixed rate (paper §2, §4): clients that send steadily far faster than any polling schedule
// justifies, "client requests in the range of 1 PPS to over 200 PPS" (§2); "the worst offender at the
// moment is spraying 14 PPS at a single USNO server" (§4). Each has its own address; all send at `rate`
// packets per second with a little jitter, forever. They ignore kiss-o'-death unless told to obey it
// (then RATE halves their rate, DENY/RSTR stops them): the two kinds of client §11 contrasts.

import { Clients, KISS_SLOW_DOWN, KISS_STOP, type PopulationContext } from "../population.ts";

export interface ElephantsOptions {
  /** Clients (default 1). */
  count?: number;
  /** Packets per second each (default 1). */
  rate?: number;
  /** Relative jitter of each interval (default 0.05). */
  jitter?: number;
  /** Whether they obey kiss-o'-death (default false). */
  obeyKod?: boolean;
  /** A fixed server index, or -1 to go through the balancer (default). */
  server?: number;
}

export class Elephants extends Clients {
  readonly description: string;
  readonly o: Required<ElephantsOptions>;
  private readonly interval: Float64Array;
  private readonly port: Uint16Array;

  constructor(name: string, o: ElephantsOptions = {}, description?: string) {
    super(name, "elephants", o.count ?? 1);
    this.elephant = true;
    const count = this.slots;
    this.o = {
      count,
      rate: this.param("rate", o.rate ?? 1, 1e-6, 10_000),
      jitter: this.param("jitter", o.jitter ?? 0.05, 0, 0.5),
      obeyKod: o.obeyKod ?? false,
      server: this.intParam("server", o.server ?? -1, -1, 1023),
    };
    this.server = this.o.server;
    this.description =
      description ??
      `${count} elephant${count === 1 ? "" : "s"} at ${this.o.rate} PPS each, ${this.o.obeyKod ? "obeying" : "ignoring"} KoD`;
    this.interval = new Float64Array(count);
    this.port = new Uint16Array(count);
  }

  protected start(ctx: PopulationContext): void {
    this.interval.fill(1 / this.o.rate);
    for (let i = 0; i < this.o.count; i++) {
      this.port[i] = this.randomPort();
      ctx.schedule(i, this.rnd.float() * this.interval[i]!);
    }
  }

  override replyWait(slot: number): number {
    return Math.min(1, 0.9 * this.interval[slot]!);
  }

  emit(slot: number, _t: number): boolean {
    return this.sendFrom(slot, this.port[slot]!);
  }

  react(slot: number, t: number, outcome: number): number {
    const action = this.kissReply(outcome, this.o.obeyKod);
    if (action === KISS_STOP) return Number.POSITIVE_INFINITY;
    if (action === KISS_SLOW_DOWN) this.interval[slot]! *= 2;
    return t + this.interval[slot]! * this.jitterFactor(this.o.jitter);
  }
}
