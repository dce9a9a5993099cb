// The client's decisions, pure (ARCHITECTURE.md: "a pure state machine plus its I/O"; MISSION.md part 9).
// No socket, no timer, no clock, no DNS: the shell (client.ts) or a simulator hands in the time (a
// monotonic `now` in seconds for scheduling, the wall clock in Unix ms for timestamps), the datagrams that
// arrive, the end of a reply wait and the addresses a name resolved to; each call returns the actions to
// carry out (events.ts): resolve a name, send a request, remember a refusal, report an event.
//
// ClientCore is the system, one per client: the set of sources (one per configured server: source.ts,
// which holds the per-server rules: when and whom to ask, which reply counts, kiss-o'-death), the DENY/RSTR
// refusals they share (a refusal one source receives holds for every source that resolves to that
// address, and for the next run through the state file), the numbering of exchanges by which the shell
// hands back replies and timeouts, and the selection among the sources.
//
// Several servers (§7, §9; RFC 5905 §11.2): after each sample, the intersection algorithm (select.ts)
// over the sources with a recent sample marks falsetickers, which stop being polled; of the truechimers the
// `keep` (3) with the lowest root distance are kept and the rest put on standby (no more requests from us),
// to be woken, with a fresh resolution, when fewer than `keep` healthy sources remain.

import type { ResolvedAddress } from "./address.ts";
import { ClientError } from "./errors.ts";
import { type ClientAction, event } from "./events.ts";
import type { Sample } from "./measure.ts";
import { type ClientOptions, checkServers, resolveClientOptions, type ServerSpec } from "./options.ts";
import type { Random } from "./random.ts";
import { type Candidate, selectTruechimers } from "./select.ts";
import { type Exchange, Source, type SourceContext, type SourceStatus } from "./source.ts";
import { activeRefusals, addRefusal, type Refusal } from "./state-file.ts";

export interface Estimate {
  source: string;
  address: string;
  offsetS: number;
  distanceS: number;
  sample: Sample;
}

export class ClientCore {
  readonly options: Readonly<ClientOptions>;
  /** Sentences saying which options were raised or lowered to respect the rules (poll.ts). */
  readonly notices: readonly string[];
  private readonly random: Random;
  private readonly sources: Source[];
  private readonly exchanges = new Map<number, Exchange>();
  private refusals: Refusal[];
  private nextExchangeId = 1;
  private started = false;
  private lastSelection = "";

  constructor(
    servers: readonly ServerSpec[],
    options: Partial<ClientOptions> = {},
    deps: { random: Random; refusals?: readonly Refusal[] },
  ) {
    checkServers(servers);
    const resolved = resolveClientOptions(options);
    const { poll, notices } = resolved;
    this.options = resolved.options;
    this.notices = Object.freeze(notices);
    this.random = deps.random;
    this.refusals = [...(deps.refusals ?? [])];
    const context: SourceContext = {
      options: this.options,
      random: this.random,
      isRefused: (address, port, wallMs) => this.isRefused(address, port, wallMs),
      refuse: (refusal, wallMs) => {
        this.refusals = addRefusal(activeRefusals(this.refusals, wallMs), refusal);
        return [...this.refusals];
      },
    };
    this.sources = servers.map((spec, id) => new Source(id, spec, poll, context));
  }

  /** Schedules every source's first request after its random start delay. Call once. */
  start(now: number): void {
    if (this.started) throw new ClientError("ERR_CLIENT_STATE", "start() called twice");
    this.started = true;
    for (const s of this.sources) s.start(now);
  }

  /** Monotonic seconds of the next due request (Infinity when none is scheduled). */
  nextDue(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const s of this.sources) if (!s.exchange && !s.resolving && s.nextAt < t) t = s.nextAt;
    return t;
  }

  /** Refusals in force at `wallMs`. */
  refusalsAt(wallMs: number): Refusal[] {
    return activeRefusals(this.refusals, wallMs);
  }

  /** Sources that may still send NTP: not stopped by refusals. */
  usableSources(): number {
    return this.sources.filter((s) => s.state !== "stopped").length;
  }

  /** Sends what is due: a resolution when the source needs an address, else a request. */
  tick(now: number, wallMs: number): ClientAction[] {
    const out: ClientAction[] = [];
    for (const s of this.sources) {
      if (s.nextAt > now || s.exchange || s.resolving) continue;
      if (s.needsResolution(wallMs)) out.push(s.resolve());
      else this.send(s, wallMs, out);
    }
    return out;
  }

  /**
   * The answer to a "resolve" action: the addresses the name has now, or why it has none. The source
   * chooses one at random among the usable ones, and its request goes out if it is due.
   */
  resolved(
    now: number,
    wallMs: number,
    sourceId: number,
    result: readonly ResolvedAddress[] | { error: string },
  ): ClientAction[] {
    const s = this.sourceById(sourceId);
    const out: ClientAction[] = [];
    if (s.resolved(now, wallMs, result, out)) this.send(s, wallMs, out);
    return out;
  }

  /** The request of `exchange` left at `t1Ms` (wall clock): the T1 of the offset and delay. */
  sent(exchange: number, t1Ms: number): void {
    const ex = this.exchanges.get(exchange);
    if (ex) ex.t1Ms = t1Ms;
  }

  /** Whether `exchange` still waits for its reply. */
  pending(exchange: number): boolean {
    return this.exchanges.has(exchange);
  }

  /**
   * A datagram arrived on the socket of `exchange` from `from`, at `wallMs` (T4). `accepted` false means
   * it was not the reply (the wait goes on); true means the exchange is over.
   */
  receive(
    now: number,
    wallMs: number,
    exchange: number,
    data: Uint8Array,
    from: { address: string; port: number },
  ): { accepted: boolean; actions: ClientAction[] } {
    const ex = this.exchanges.get(exchange);
    if (!ex) return { accepted: false, actions: [] };
    const r = ex.source.receive(now, wallMs, ex, data, from);
    if (!r.accepted) return { accepted: false, actions: r.actions };
    this.exchanges.delete(ex.id);
    if (r.select) this.select(now, r.actions);
    return { accepted: true, actions: r.actions };
  }

  /** The reply wait of `exchange` ended with no accepted reply. */
  timeout(now: number, exchange: number): ClientAction[] {
    const ex = this.exchanges.get(exchange);
    if (!ex) return [];
    this.exchanges.delete(ex.id);
    const out: ClientAction[] = [ex.source.timeout(now, ex)];
    this.select(now, out);
    return out;
  }

  /** Every source's state, for displays and tests. */
  status(): SourceStatus[] {
    return this.sources.map((s) => s.status());
  }

  /** Our offset according to the best kept source (lowest root distance), if any has a recent sample. */
  estimate(now: number): Estimate | undefined {
    let best: Estimate | undefined;
    for (const s of this.sources) {
      if (s.role !== "kept" || s.state !== "active" || !s.address) continue;
      const c = s.candidate(now);
      if (!c) continue;
      if (!best || c.distanceS < best.distanceS) {
        best = {
          source: s.label,
          address: s.address.address,
          offsetS: c.offsetS,
          distanceS: c.distanceS,
          sample: c.sample,
        };
      }
    }
    return best;
  }

  private sourceById(id: number): Source {
    const s = this.sources[id];
    if (!s) throw new ClientError("ERR_CLIENT_STATE", `no source ${id}`);
    return s;
  }

  private isRefused(address: string, port: number, wallMs: number): boolean {
    for (const r of this.refusals)
      if (r.address === address && r.port === port && r.untilMs > wallMs) return true;
    return false;
  }

  /** A request from `s`, numbered so that the shell can hand back its reply or its timeout. */
  private send(s: Source, wallMs: number, out: ClientAction[]): void {
    const ex = s.send(wallMs, this.nextExchangeId++, out);
    this.exchanges.set(ex.id, ex);
  }

  /** Runs the selection over the active sources with a recent sample; reports a change of outcome. */
  private select(now: number, out: ClientAction[]): void {
    const candidates: Candidate[] = [];
    for (const s of this.sources) {
      s.distanceS = undefined;
      if (s.state !== "active") continue;
      const c = s.candidate(now);
      if (c) {
        candidates.push({ id: c.id, offsetS: c.offsetS, distanceS: c.distanceS });
        s.distanceS = c.distanceS;
      }
    }
    const sel = selectTruechimers(candidates);
    const kept = sel.truechimers.slice(0, this.options.keep);
    const surplus = sel.truechimers.slice(this.options.keep);
    for (const id of kept) this.sources[id]!.role = "kept";
    for (const id of sel.falsetickers) this.sources[id]!.demote("falseticker");
    for (const id of surplus) this.sources[id]!.demote("surplus");
    this.wake(now, out);
    const summary = `${sel.majority}|${kept.join(",")}|${sel.falsetickers.join(",")}|${surplus.join(",")}`;
    if (summary === this.lastSelection || candidates.length === 0) return;
    this.lastSelection = summary;
    const peer = kept[0] === undefined ? undefined : this.sources[kept[0]];
    const peerOffset = candidates.find((c) => c.id === kept[0])?.offsetS;
    out.push(
      event({
        kind: "selection",
        majority: sel.majority,
        kept: kept.map((id) => this.sources[id]!.label),
        falsetickers: sel.falsetickers.map((id) => this.sources[id]!.label),
        surplus: surplus.map((id) => this.sources[id]!.label),
        ...(peer && { systemPeer: peer.label }),
        ...(peerOffset !== undefined && { offsetS: peerOffset }),
      }),
    );
  }

  /** Wakes surplus sources while fewer than `keep` active sources are healthy (a fresh sample, or new). */
  private wake(now: number, out: ClientAction[]): void {
    let healthy = 0;
    for (const s of this.sources) if (s.healthy(now)) healthy++;
    for (const s of this.sources) {
      if (healthy >= this.options.keep) break;
      if (s.state !== "standby" || s.role !== "surplus") continue;
      s.wake(now);
      healthy++;
      out.push(
        event({ kind: "woken", source: s.label, reason: `fewer than ${this.options.keep} healthy servers` }),
      );
    }
  }
}
