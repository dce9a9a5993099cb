// Virtual time for the client tests: an event queue, virtual servers that answer (or not) with packets built
// by the real codec, and a driver that runs ClientCore instances against them exactly as the shell
// (src/client/client.ts) does: one timer per client at core.nextDue(), resolutions answered from a table,
// each request's reply (or replies, forged ones included) delivered after a round trip, and a timeout when
// no reply was accepted. Hours of polling by thousands of clients run in a second.

import type { ResolvedAddress } from "../../src/client/address.ts";
import { ClientCore } from "../../src/client/core.ts";
import type { ClientAction, ClientEvent } from "../../src/client/events.ts";
import type { ClientOptions, ServerSpec } from "../../src/client/options.ts";
import type { Random } from "../../src/client/random.ts";
import type { Refusal } from "../../src/client/state-file.ts";
import {
  encodePacket,
  kissCodeToUint32,
  MODE_SERVER,
  readNtpTimestamp,
  secondsToShort,
  unixMsToNtp,
} from "../../src/protocol/index.ts";

/** A binary heap of timed callbacks; equal times run in insertion order. */
class Queue {
  private heap: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  get size(): number {
    return this.heap.length;
  }
  push(at: number, fn: () => void): void {
    const h = this.heap;
    h.push({ at, seq: this.seq++, fn });
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  peek(): number {
    return this.heap[0]?.at ?? Number.POSITIVE_INFINITY;
  }
  pop(): { at: number; fn: () => void } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
  private less(a: { at: number; seq: number }, b: { at: number; seq: number }): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

export interface ReplyFields {
  /** The server's clock minus true time, ms (default 0). */
  offsetMs?: number;
  stratum?: number;
  leap?: number;
  poll?: number;
  precision?: number;
  rootDelay?: number;
  rootDispersion?: number;
  refId?: number;
  /** Replace the origin timestamp (a forged or stale reply). */
  origin?: { seconds: number; fraction: number };
  /** Make it a kiss-o'-death with this code (stratum 0, leap 3). */
  kiss?: string;
  zeroTransmit?: boolean;
}

/** A server reply to `request` received at true time `atMs`, as the codec encodes it. */
export function makeReply(request: Uint8Array, atMs: number, f: ReplyFields = {}): Uint8Array {
  const serverMs = atMs + (f.offsetMs ?? 0);
  const kiss = f.kiss !== undefined;
  return encodePacket({
    leap: kiss ? 3 : (f.leap ?? 0),
    version: 4,
    mode: MODE_SERVER,
    stratum: kiss ? 0 : (f.stratum ?? 2),
    poll: f.poll ?? (request[2]! << 24) >> 24,
    precision: f.precision ?? -20,
    rootDelay: secondsToShort(f.rootDelay ?? 0.01),
    rootDispersion: secondsToShort(f.rootDispersion ?? 0.01),
    refId: kiss ? kissCodeToUint32(f.kiss!) : (f.refId ?? 0x7f000001),
    referenceTimestamp: unixMsToNtp(serverMs - 1000),
    originTimestamp: f.origin ?? readNtpTimestamp(request, 40),
    receiveTimestamp: unixMsToNtp(serverMs),
    transmitTimestamp: f.zeroTransmit ? { seconds: 0, fraction: 0 } : unixMsToNtp(serverMs + 0.01),
    extensions: [],
    mac: null,
  });
}

/** A datagram a virtual network delivers: its bytes, who it comes from, and after how long (s). */
export interface Delivery {
  data: Uint8Array;
  from: { address: string; port: number };
  delayS: number;
}

/** What the network does with a request: the datagrams that come back (none: it is lost). */
export type Network = (
  send: Extract<ClientAction, { type: "send" }>,
  atS: number,
  atWallMs: number,
  client: SimClient,
) => Delivery[];

/** A reply from the address asked after `rttS`, with these fields. */
export function answer(
  send: Extract<ClientAction, { type: "send" }>,
  atWallMs: number,
  f: ReplyFields = {},
  rttS = 0.01,
): Delivery {
  return {
    data: makeReply(send.packet, atWallMs + (rttS * 1000) / 2, f),
    from: { address: send.address, port: send.port },
    delayS: rttS,
  };
}

export interface SimOptions {
  /** Wall clock at virtual time 0, Unix ms (default 2026-01-01T00:00:00Z). */
  wall0Ms?: number;
  replyTimeoutS?: number;
}

/** One client driven in virtual time; everything it did is recorded. */
export class SimClient {
  readonly core: ClientCore;
  readonly sends: { atS: number; address: string; port: number; exchange: number; packet: Uint8Array }[] = [];
  readonly events: { atS: number; event: ClientEvent }[] = [];
  readonly resolves: { atS: number; host: string }[] = [];
  readonly refusalWrites: Refusal[][] = [];
  private version = 0;
  private readonly sim: Sim;
  private readonly resolve: (host: string) => ResolvedAddress[] | { error: string };
  private readonly network: Network;

  constructor(
    sim: Sim,
    servers: ServerSpec[],
    options: Partial<ClientOptions>,
    random: Random,
    resolve: (host: string) => ResolvedAddress[] | { error: string },
    network: Network,
    refusals: Refusal[] = [],
  ) {
    this.sim = sim;
    this.resolve = resolve;
    this.network = network;
    this.core = new ClientCore(servers, options, { random, refusals });
  }

  start(): void {
    this.core.start(this.sim.now);
    this.arm();
  }

  eventsOf<K extends ClientEvent["kind"]>(kind: K): (Extract<ClientEvent, { kind: K }> & { atS: number })[] {
    return this.events
      .filter((e) => e.event.kind === kind)
      .map((e) => ({ ...(e.event as Extract<ClientEvent, { kind: K }>), atS: e.atS }));
  }

  private arm(): void {
    const v = ++this.version;
    const due = this.core.nextDue();
    if (!Number.isFinite(due)) return;
    this.sim.at(Math.max(due, this.sim.now), () => {
      if (v !== this.version) return;
      this.run(this.core.tick(this.sim.now, this.sim.wallMs()));
      this.arm();
    });
  }

  private run(actions: ClientAction[]): void {
    for (const a of actions) {
      if (a.type === "event") this.events.push({ atS: this.sim.now, event: a.event });
      else if (a.type === "refuse") this.refusalWrites.push(a.refusals);
      else if (a.type === "resolve") {
        this.resolves.push({ atS: this.sim.now, host: a.host });
        const result = this.resolve(a.host);
        this.run(this.core.resolved(this.sim.now, this.sim.wallMs(), a.source, result));
      } else this.exchange(a);
    }
  }

  private exchange(a: Extract<ClientAction, { type: "send" }>): void {
    const t1 = this.sim.wallMs();
    this.core.sent(a.exchange, t1);
    this.sends.push({
      atS: this.sim.now,
      address: a.address,
      port: a.port,
      exchange: a.exchange,
      packet: a.packet,
    });
    for (const d of this.network(a, this.sim.now, t1, this)) {
      this.sim.at(this.sim.now + d.delayS, () => {
        if (!this.core.pending(a.exchange)) return;
        const r = this.core.receive(this.sim.now, this.sim.wallMs(), a.exchange, d.data, d.from);
        this.run(r.actions);
        if (r.accepted) this.arm();
      });
    }
    this.sim.at(this.sim.now + this.sim.replyTimeoutS, () => {
      if (!this.core.pending(a.exchange)) return;
      this.run(this.core.timeout(this.sim.now, a.exchange));
      this.arm();
    });
  }
}

export class Sim {
  now = 0;
  readonly wall0Ms: number;
  readonly replyTimeoutS: number;
  private readonly queue = new Queue();

  constructor(o: SimOptions = {}) {
    this.wall0Ms = o.wall0Ms ?? Date.UTC(2026, 0, 1);
    this.replyTimeoutS = o.replyTimeoutS ?? 2;
  }

  wallMs(): number {
    return this.wall0Ms + this.now * 1000;
  }

  at(t: number, fn: () => void): void {
    this.queue.push(t, fn);
  }

  /** Runs every event up to virtual time `until` (s). */
  run(until: number): void {
    while (this.queue.size > 0 && this.queue.peek() <= until) {
      const e = this.queue.pop();
      this.now = e.at;
      e.fn();
    }
    this.now = until;
  }

  client(
    servers: ServerSpec[],
    options: Partial<ClientOptions>,
    random: Random,
    resolve: (host: string) => ResolvedAddress[] | { error: string },
    network: Network,
    refusals: Refusal[] = [],
  ): SimClient {
    return new SimClient(this, servers, options, random, resolve, network, refusals);
  }
}

/** A resolver for literal addresses only: the host is its own single address. */
export function literal(host: string): ResolvedAddress[] {
  return [{ address: host, family: host.includes(":") ? 6 : 4 }];
}

/** Differences between successive send times, seconds. */
export function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}
