// The mice (paper §2, §4): well-behaved ntpd clients. "This software has been carefully groomed to be a good
// citizen; it begins by sending one packet per minute and then retreats to one packet every fifteen
// minutes" (§2); "packets are sent at intervals of 64 to 1,024 s. Usually, the client starts out at 64 s
// [...] then increases in steps to 1,024 s" (§4). They obey kiss-o'-death (§11: KoD "has been implemented
// only in the public software distribution").
//
// Two forms:
//
// - MiceStream: the settled multitude, millions of clients already at their longest poll. Keeping a
//   record per client would cost hundreds of megabytes for the 16,000 PPS of NIST (16 million clients at
//   1,024 s), so the stream holds none: client j sends at (k + (j + u_j) / N) * poll for k = 0, 1, ...,
//   with u_j a fixed hash of (seed, j) in [0, 1/2). That is each client strictly periodic, the clients'
//   phases spread evenly over the poll with a per-client jitter, and the whole stream one queue slot that
//   walks j. The rare client that gets a kiss-o'-death is remembered in a small map (RATE: it sends on
//   every 2nd, 4th, ... of its turns; DENY or RSTR: never again).
//
// - NtpdClients: clients with state, for the behaviour the stream cannot show: starting at the shortest
//   poll and rising, backing off when unanswered, slowing down or stopping on a kiss, and sharing one
//   address behind a firewall (§4: "2,000 clients behind the firewall were using the USNO servers with
//   total aggregate impact of 9 PPS").

import {
  Clients,
  KISS_SLOW_DOWN,
  KISS_STOP,
  kissAction,
  OUT_ANSWERED,
  OUT_KISSED,
  OUT_SKIPPED,
  Population,
  type PopulationContext,
} from "../population.ts";
import { hash01 } from "../random.ts";

/** RFC 5905's longest poll, 2^17 s (36 h): how far a kiss can push an obedient client. */
export const MAX_POLL_SECONDS = 2 ** 17;

export interface MiceStreamOptions {
  /** Clients (default 1,000,000). */
  count?: number;
  /** Their poll interval, seconds (default 1,024: ntpd's longest by default, where a settled client sits). */
  poll?: number;
  /** Whether they obey kiss-o'-death (default true: ntpd does). */
  obeyKod?: boolean;
  /** Source port (ntpd sends from 123). */
  port?: number;
}

export class MiceStream extends Population {
  readonly description = "settled ntpd clients at their longest poll, obeying KoD (§2, §4)";
  readonly slots = 1;
  readonly addresses: number;
  readonly count: number;
  readonly poll: number;
  readonly obeyKod: boolean;
  readonly port: number;
  private j = 0;
  private k = 0;
  private seed = 0;
  /** Clients that were kissed: index -> [multiplier (0 = stopped), round of the kiss]. */
  private readonly kissed = new Map<number, [number, number]>();

  constructor(name: string, o: MiceStreamOptions = {}) {
    super(name);
    this.count = this.intParam("count", o.count ?? 1_000_000, 1, 2 ** 28);
    this.poll = this.param("poll", o.poll ?? 1024, 1, MAX_POLL_SECONDS);
    this.obeyKod = o.obeyKod ?? true;
    this.port = this.intParam("port", o.port ?? 123, 1, 65535);
    this.addresses = this.count;
  }

  /** Packets per second the stream offers. */
  get rate(): number {
    return this.count / this.poll;
  }

  params(): Record<string, unknown> {
    return {
      kind: "mice-stream",
      count: this.count,
      poll: this.poll,
      obeyKod: this.obeyKod,
      rate: this.rate,
    };
  }

  private timeOf(k: number, j: number): number {
    return (k + (j + hash01(this.seed, j) * 0.5) / this.count) * this.poll;
  }

  protected start(ctx: PopulationContext): void {
    this.seed = this.rnd.next32();
    this.j = 0;
    this.k = 0;
    ctx.schedule(0, this.timeOf(0, 0));
  }

  emit(_slot: number, _t: number): boolean {
    const j = this.j;
    if (this.kissed.size > 0) {
      const s = this.kissed.get(j);
      if (s !== undefined && (s[0] === 0 || (this.k - s[1]) % s[0] !== 0)) return false;
    }
    return this.sendFrom(j, this.port);
  }

  react(_slot: number, t: number, outcome: number): number {
    const action = this.kissReply(outcome, this.obeyKod);
    if (action === KISS_STOP) this.kissed.set(this.j, [0, this.k]);
    else if (action === KISS_SLOW_DOWN) {
      const prev = this.kissed.get(this.j);
      const m = Math.min((prev?.[0] || 1) * 2, Math.max(1, Math.floor(MAX_POLL_SECONDS / this.poll)));
      this.kissed.set(this.j, [m, this.k]);
    }
    if (++this.j === this.count) {
      this.j = 0;
      this.k++;
    }
    const next = this.timeOf(this.k, this.j);
    return next > t ? next : t + 1e-6;
  }
}

export interface NtpdClientsOptions {
  /** Clients (default 1,000). */
  count?: number;
  /** First poll interval, seconds (default 64). */
  minPoll?: number;
  /** Longest poll it rises to, seconds (default 1,024). */
  maxPoll?: number;
  /** Answered polls at one interval before it doubles (default 8). */
  pollsPerStep?: number;
  /** Consecutive unanswered polls before it doubles its interval (default 4). */
  missesPerStep?: number;
  /** Send an initial burst of this many requests 2 s apart (ntpd's iburst is 8; default 0: none). */
  iburst?: number;
  /** Relative jitter of each interval, +-(default 0.05). */
  jitter?: number;
  /**
   * Start times spread uniformly over [0, startWithin) s (default: minPoll; settled clients: each within its
   * own poll, so under maxPoll).
   */
  startWithin?: number;
  /**
   * Clients that have been running a while (default false: all just started, at minPoll): each starts at a
   * poll drawn from minPoll, 2 minPoll, ... up to maxPoll, every step as likely, as a server's clients are
   * when they were switched on at different times (§4: "increases in steps to 1,024 s").
   */
  settled?: boolean;
  /** Whether they obey kiss-o'-death (default true). */
  obeyKod?: boolean;
  /** All clients share one address (a NAT firewall, §4), each on its own port (default false). */
  sharedAddress?: boolean;
}

export class NtpdClients extends Clients {
  readonly description: string;
  readonly o: Required<NtpdClientsOptions>;
  private readonly poll: Float64Array;
  private readonly steps: Uint16Array;
  private readonly misses: Uint16Array;
  private readonly burst: Uint8Array;
  /** Settled clients without a startWithin: each starts within its own poll, at a phase of its own. */
  private readonly ownPhase: boolean;

  constructor(name: string, o: NtpdClientsOptions = {}, description?: string) {
    super(name, "ntpd-clients", o.count ?? 1000, o.sharedAddress ?? false);
    const count = this.slots;
    const minPoll = this.param("minPoll", o.minPoll ?? 64, 0.01, MAX_POLL_SECONDS);
    const maxPoll = this.param("maxPoll", o.maxPoll ?? 1024, minPoll, MAX_POLL_SECONDS);
    this.o = {
      count,
      minPoll,
      maxPoll,
      pollsPerStep: this.intParam("pollsPerStep", o.pollsPerStep ?? 8, 1, 65535),
      missesPerStep: this.intParam("missesPerStep", o.missesPerStep ?? 4, 1, 65535),
      iburst: this.intParam("iburst", o.iburst ?? 0, 0, 16),
      jitter: this.param("jitter", o.jitter ?? 0.05, 0, 0.5),
      startWithin: this.param("startWithin", o.startWithin ?? (o.settled ? maxPoll : minPoll), 0),
      settled: o.settled ?? false,
      obeyKod: o.obeyKod ?? true,
      sharedAddress: o.sharedAddress ?? false,
    };
    this.description =
      description ?? "ntpd clients: 64 s rising to 1,024 s, backing off, obeying KoD (§2, §4)";
    this.ownPhase = this.o.settled && o.startWithin === undefined;
    this.poll = new Float64Array(count);
    this.steps = new Uint16Array(count);
    this.misses = new Uint16Array(count);
    this.burst = new Uint8Array(count);
  }

  override params(): Record<string, unknown> {
    return { ...super.params(), rate: this.o.count / this.o.minPoll };
  }

  protected start(ctx: PopulationContext): void {
    const o = this.o;
    this.poll.fill(o.minPoll);
    this.burst.fill(o.iburst > 0 ? o.iburst - 1 : 0);
    // Steps from minPoll to maxPoll by doubling (the last one capped at maxPoll).
    const steps = Math.ceil(Math.log2(o.maxPoll / o.minPoll) - 1e-9);
    for (let i = 0; i < o.count; i++) {
      if (o.settled) {
        // Each somewhere along its climb, so that they do not step up together (a wave of load every step).
        this.poll[i] = Math.min(o.minPoll * 2 ** this.rnd.int(steps + 1), o.maxPoll);
        this.steps[i] = this.rnd.int(o.pollsPerStep);
      }
      const within = this.ownPhase ? this.poll[i]! : o.startWithin;
      ctx.schedule(i, this.rnd.float() * within);
    }
  }

  override replyWait(slot: number): number {
    return this.burst[slot]! > 0 ? 1.8 : 1;
  }

  emit(slot: number, _t: number): boolean {
    // Behind the firewall every host has the one address and a port of its own.
    return this.o.sharedAddress ? this.sendFrom(0, 1024 + (slot % 64512)) : this.sendFrom(slot, 123);
  }

  react(slot: number, t: number, outcome: number): number {
    if (outcome === OUT_SKIPPED) return t + this.poll[slot]!;
    const o = this.o;
    if (this.burst[slot]! > 0) {
      // iburst: the start-up volley, 2 s apart, whatever comes back.
      this.burst[slot]!--;
      return t + 2;
    }
    if (outcome === OUT_ANSWERED) {
      this.misses[slot] = 0;
      if (this.poll[slot]! < o.maxPoll && ++this.steps[slot]! >= o.pollsPerStep) {
        this.poll[slot] = Math.min(this.poll[slot]! * 2, o.maxPoll);
        this.steps[slot] = 0;
      }
    } else if (outcome === OUT_KISSED && o.obeyKod) {
      const action = kissAction(this.kiss);
      if (action === KISS_STOP) return Number.POSITIVE_INFINITY;
      if (action === KISS_SLOW_DOWN) {
        this.poll[slot] = Math.min(this.poll[slot]! * 2, MAX_POLL_SECONDS);
        this.steps[slot] = 0;
      }
    } else if (++this.misses[slot]! >= o.missesPerStep) {
      // Unanswered (or a kiss it ignores, which is no answer): the reach register empties and ntpd backs off.
      this.misses[slot] = 0;
      this.poll[slot] = Math.min(this.poll[slot]! * 2, o.maxPoll);
    }
    const j = o.jitter > 0 ? this.jitterFactor(o.jitter) : 1;
    return t + this.poll[slot]! * j;
  }
}

export interface FirewallOptions {
  /** Hosts behind the firewall (default 2,000, §4). */
  hosts?: number;
  /** Their aggregate rate, packets per second (default 9, §4). */
  rate?: number;
  /** Whether the hosts obey kiss-o'-death (default true: they run ntpd). */
  obeyKod?: boolean;
}

/**
 * §4: "2,000 clients behind the firewall were using the USNO servers with total aggregate impact of 9 PPS".
 * ntpd hosts behind one NAT address, each polling every hosts/rate seconds (222 s for the defaults: between
 * ntpd's 128 and 256 s steps, so that the aggregate is the paper's 9 PPS exactly).
 */
export function firewall(name: string, o: FirewallOptions = {}): NtpdClients {
  const hosts = o.hosts ?? 2000;
  const rate = o.rate ?? 9;
  const poll = hosts / rate;
  return new NtpdClients(
    name,
    {
      count: hosts,
      minPoll: poll,
      maxPoll: poll,
      startWithin: poll,
      obeyKod: o.obeyKod ?? true,
      sharedAddress: true,
    },
    `${hosts.toLocaleString("en-US")} ntpd hosts behind one firewall address, ${rate} PPS in all (§4)`,
  );
}

/**
 * The settled multitude the scenarios fill their traffic up with: `pps` packets per second from ntpd clients
 * at their longest poll, 1,024 s (one client at the least).
 */
export function settledMice(name: string, pps: number): MiceStream {
  return new MiceStream(name, { count: Math.max(1, Math.round(pps * 1024)), poll: 1024 });
}
