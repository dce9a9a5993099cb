// The client's I/O shell: what turns the pure ClientCore (core.ts) into a running client. It owns the one
// timer (set to the core's next due time), resolves names (node:dns, every time the core asks: paper §7),
// runs each exchange on its own randomly-ported UDP socket (udp.ts, RFC 9109), keeps the kiss-o'-death
// state file (state-file.ts), and reports the core's events to the embedding program. It decides nothing
// itself: every decision is the core's.
//
// Time. The core schedules in monotonic seconds (performance.now(): never stepped) and measures with the
// wall clock, which here is performance.now() plus an offset to UTC measured again before every tick, so
// that a step of the system clock (by chronyd or systemd-timesyncd running beside us) is seen at the next
// poll. Both come from a ClientClock, which a test or a simulation may replace: a virtual clock that jumps
// to each due time runs hours of polling in milliseconds against real servers (test/client/).
//
// Reply waits are real time whatever the clock: they are I/O, not policy.

import { lookup } from "node:dns/promises";
import { performance } from "node:perf_hooks";
import type { ResolvedAddress } from "./address.ts";
import { ClientCore, type Estimate } from "./core.ts";
import { ClientError } from "./errors.ts";
import type { ClientAction, ClientEvent } from "./events.ts";
import type { NtsSources, NtsVerdict } from "./nts.ts";
import type { ClientOptions, ServerSpec } from "./options.ts";
import { cryptoRandom, type Random } from "./random.ts";
import type { SourceStatus } from "./source.ts";
import { type Refusal, readStateFile, writeStateFile } from "./state-file.ts";
import { udpExchange } from "./udp.ts";

export interface ClientClock {
  /** Monotonic seconds. */
  now(): number;
  /** Wall clock, Unix ms. */
  wallMs(): number;
  /** Called before each tick: a real clock measures its offset to UTC again here. */
  calibrate?(): void;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * Date.now() - performance.now(), read at a millisecond tick of Date.now() (so within a few microseconds,
 * not Date.now()'s half millisecond): spins for at most about 2 ms.
 */
function measureUtcOffset(): number {
  const first = Date.now();
  let wall = first;
  let mono = performance.now();
  const giveUp = mono + 2.5;
  while (wall === first && mono < giveUp) {
    wall = Date.now();
    mono = performance.now();
  }
  return wall - mono;
}

/** The real clock: performance.now() for scheduling, performance.now() + a calibrated offset for timestamps. */
export function systemClock(): ClientClock {
  let offset = measureUtcOffset();
  return {
    now: () => performance.now() / 1000,
    wallMs: () => performance.now() + offset,
    calibrate: () => {
      offset = measureUtcOffset();
    },
    setTimer: (fn, ms) => setTimeout(fn, ms),
    clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
  };
}

/** Resolves a name (or a literal) to all its addresses. */
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

/** The system resolver (getaddrinfo through node:dns), every address in the order given. */
export const systemResolver: Resolver = async (host) => {
  const all = await lookup(host, { all: true, order: "verbatim" });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

export interface NtpClientOptions extends Partial<ClientOptions> {
  servers: readonly ServerSpec[];
  /** Where DENY/RSTR refusals are remembered across runs; without it they last for this run only. */
  stateFile?: string;
  /** Seconds to wait for each reply (default 2). */
  replyTimeout?: number;
  resolver?: Resolver;
  clock?: ClientClock;
  /** Must be unpredictable in production (the default is the OS CSPRNG): see random.ts. */
  random?: Random;
  /** Every event of the core: samples, no-replies, kisses, redirects, selections (events.ts ClientEvent). */
  onEvent?: (e: ClientEvent) => void;
  /** Problems that do not stop the client: options clamped to the rules, an unreadable state file. */
  onWarning?: (message: string) => void;
  /**
   * NTS (RFC 8915): every request authenticated through these sessions, source i by the i-th (their
   * establish() gives the servers to pass as `servers`); a reply that does not authenticate is ignored.
   */
  nts?: NtsSources;
}

export class NtpClient {
  readonly core: ClientCore;
  private readonly clock: ClientClock;
  private readonly resolver: Resolver;
  private readonly replyTimeoutMs: number;
  private readonly stateFile: string | undefined;
  private readonly onEvent: (e: ClientEvent) => void;
  private readonly onWarning: (m: string) => void;
  private readonly warnings: string[] = [];
  private readonly cancels = new Set<() => void>();
  private timer: unknown;
  private running = false;
  private readonly nts: NtsSources | undefined;

  constructor(o: NtpClientOptions) {
    this.clock = o.clock ?? systemClock();
    this.resolver = o.resolver ?? systemResolver;
    const reply = o.replyTimeout ?? 2;
    if (typeof reply !== "number" || !(reply > 0) || reply > 60) {
      throw new ClientError("ERR_CLIENT_INVALID_OPTION", `replyTimeout must be 0-60 s, got ${reply}`);
    }
    this.replyTimeoutMs = reply * 1000;
    this.stateFile = o.stateFile;
    this.nts = o.nts;
    this.onEvent = o.onEvent ?? (() => {});
    this.onWarning = o.onWarning ?? (() => {});
    let refusals: Refusal[] = [];
    if (o.stateFile !== undefined) {
      try {
        const parsed = readStateFile(o.stateFile);
        refusals = parsed.refusals;
        for (const p of parsed.problems) this.warnings.push(`${o.stateFile}: ${p}`);
      } catch (err) {
        this.warnings.push((err as Error).message);
      }
    }
    this.core = new ClientCore(o.servers, o, { random: o.random ?? cryptoRandom(), refusals });
    this.warnings.unshift(...this.core.notices);
  }

  /** Refusals read from the state file (or received since) that are still in force. */
  refusals(): Refusal[] {
    return this.core.refusalsAt(this.clock.wallMs());
  }

  /** Starts polling: each server's first request goes out after its random start delay. */
  start(): void {
    if (this.running) throw new ClientError("ERR_CLIENT_STATE", "the client is already running");
    this.running = true;
    for (const w of this.warnings.splice(0)) this.onWarning(w);
    this.core.start(this.clock.now());
    this.arm();
  }

  /** Stops: no more requests; open reply waits are abandoned. */
  stop(): void {
    this.running = false;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    for (const cancel of [...this.cancels]) cancel();
    this.cancels.clear();
  }

  status(): SourceStatus[] {
    return this.core.status();
  }

  /** Our offset according to the best server kept by the selection, if any. */
  estimate(): Estimate | undefined {
    return this.core.estimate(this.clock.now());
  }

  private arm(): void {
    if (!this.running) return;
    if (this.timer !== undefined) this.clock.clearTimer(this.timer);
    this.timer = undefined;
    const due = this.core.nextDue();
    if (!Number.isFinite(due)) return;
    const ms = Math.max(0, (due - this.clock.now()) * 1000);
    this.timer = this.clock.setTimer(() => this.fire(), ms);
  }

  private fire(): void {
    this.timer = undefined;
    if (!this.running) return;
    this.clock.calibrate?.();
    this.run(this.core.tick(this.clock.now(), this.clock.wallMs()));
    this.arm();
  }

  private run(actions: ClientAction[]): void {
    for (const a of actions) {
      if (!this.running) return;
      switch (a.type) {
        case "event":
          this.onEvent(a.event);
          break;
        case "refuse":
          if (this.stateFile !== undefined) {
            try {
              writeStateFile(this.stateFile, a.refusals);
            } catch (err) {
              this.onWarning((err as Error).message);
            }
          }
          break;
        case "resolve":
          this.resolve(a.source, a.host);
          break;
        case "send":
          this.exchange(a);
          break;
      }
    }
  }

  private resolve(source: number, host: string): void {
    this.resolver(host).then(
      (addresses) =>
        this.after(() => this.core.resolved(this.clock.now(), this.clock.wallMs(), source, addresses)),
      (err: Error) =>
        this.after(() =>
          this.core.resolved(this.clock.now(), this.clock.wallMs(), source, {
            error: err.message ?? String(err),
          }),
        ),
    );
  }

  private after(step: () => ClientAction[]): void {
    if (!this.running) return;
    this.run(step());
    this.arm();
  }

  private exchange(a: Extract<ClientAction, { type: "send" }>): void {
    if (this.nts === undefined) {
      this.exchangeWith(a, a.packet, undefined);
      return;
    }
    // NTS: the core's request wrapped in the source's cookie and authenticator (NTS-KE first if it has none
    // left); a failed key exchange is a request that got no reply.
    this.nts.request(a.source, a.packet).then(
      (r) => this.exchangeWith(a, r.packet, r.check),
      () => {
        if (this.running && this.core.pending(a.exchange))
          this.run(this.core.timeout(this.clock.now(), a.exchange));
        this.arm();
      },
    );
  }

  private exchangeWith(
    a: Extract<ClientAction, { type: "send" }>,
    packet: Uint8Array,
    check: ((reply: Uint8Array) => NtsVerdict) | undefined,
  ): void {
    if (!this.running) return;
    const x = udpExchange({
      family: a.family,
      address: a.address,
      port: a.port,
      packet,
      timeoutMs: this.replyTimeoutMs,
      wallMs: () => this.clock.wallMs(),
      onSent: (t1) => this.core.sent(a.exchange, t1),
      onDatagram: (data, from, t4) => {
        if (!this.running) return true;
        // NTS: only an authenticated reply, an NTS NAK or another kiss-o'-death (kisses the core judges by
        // their origin) reaches the core.
        if (check !== undefined && check(data) === "ignore") return false;
        const r = this.core.receive(this.clock.now(), t4, a.exchange, data, from);
        this.run(r.actions);
        return r.accepted;
      },
    });
    const cancel = () => x.cancel();
    this.cancels.add(cancel);
    void x.done.then((outcome) => {
      this.cancels.delete(cancel);
      if (!this.running) return;
      if (outcome.kind !== "answered" && this.core.pending(a.exchange)) {
        this.run(this.core.timeout(this.clock.now(), a.exchange));
      }
      this.arm();
    });
  }
}
