// The client's decisions, pure (ARCHITECTURE.md: "a pure state machine plus its I/O"; MISSION.md part 9).
// No socket, no timer, no clock, no DNS: the shell (client.ts) or a simulator hands in the time (a
// monotonic `now` in seconds for scheduling, the wall clock in Unix ms for timestamps), the datagrams that
// arrive, the end of a reply wait and the addresses a name resolved to; each call returns the actions to
// carry out: resolve a name, send a request, remember a refusal, report an event.
//
// Per server ("source"):
// - When to ask: its PollSchedule (poll.ts): random start, jitter, 64 s rising to 1024 s while stable,
//   exponential backoff while unanswered, burst only if configured and while answered, RATE obeyed.
// - Whom to ask (paper §7): the name is resolved again at each selection of an address (at start, after
//   `reselectAfter` consecutive failures, after a DENY/RSTR), every address returned is considered, and one
//   is chosen uniformly at random among the usable ones (not refused; not the one that just failed, when
//   there is another). A client that always takes the first address, or resolves once at boot, defeats the
//   DNS rotation that spreads clients over servers; one that never resolves again keeps hammering a
//   retired server for years (§11). No address is built in: servers come from the caller.
// - Which replies count (RFC 5905 §8, paper §8-§9, RFC 8633 §3.2): match.ts, by the origin timestamp's
//   64 bits and the address and port asked. With `followRedirects`, a reply with that exact origin from
//   another address is accepted too, and the source switches to that server and says so (the paper's
//   active redirection, §8). Everything else is ignored and the wait goes on. Valid replies are measured by
//   evaluateReply: unsynchronised servers (leap 3, stratum 0 or 16) and zero transmit timestamps give no
//   sample.
// - Kiss-o'-death (§11, RFC 5905 §7.4): RATE lengthens the interval (poll.ts) and ends any burst; DENY and
//   RSTR make the source stop using that address: it is logged, recorded with an expiry (the shell writes
//   it to the state file, state-file.ts), and never sent to again until the expiry, in this run or the
//   next; the source resolves its name again and continues with another address if there is one, else
//   it stops sending NTP altogether (it only looks the name up again now and then, DNS only). Other kiss
//   codes (INIT, STEP, ...) are informative: no sample, backoff as for an unusable reply.
// - Several servers (§7, §9; RFC 5905 §11.2): after each sample, the intersection algorithm (select.ts)
//   over the sources with a recent sample marks falsetickers, which stop being polled; of the truechimers
//   the `keep` (3) with the lowest root distance are kept and the rest put on standby (no more requests
//   from us), to be woken, with a fresh resolution, when fewer than `keep` healthy sources remain.

import { kissCodeInfo, OFF_POLL, uint32ToKissCode } from "../protocol/index.ts";
import { familyOf, formatServer, type ResolvedAddress, unmapAddress } from "./address.ts";
import { ClientError } from "./errors.ts";
import { type ClientAction, event } from "./events.ts";
import { type IgnoreReason, matchReply } from "./match.ts";
import { buildRequest, evaluateReply, rootDistance, type Sample } from "./measure.ts";
import { type ClientOptions, checkServers, resolveClientOptions, type ServerSpec } from "./options.ts";
import { PollSchedule } from "./poll.ts";
import type { Random } from "./random.ts";
import { type Candidate, selectTruechimers } from "./select.ts";
import { activeRefusals, addRefusal, type Refusal } from "./state-file.ts";

/** How often a source stopped by refusals looks its name up again for new addresses (DNS only), seconds. */
export const STOPPED_RECHECK_S = 3600;

/** Samples kept per source: the clock filter's register (RFC 5905 §10). */
export const FILTER_LENGTH = 8;

export type SourceState = "active" | "standby" | "stopped";
/** What the selection made of a source: kept, falseticker, surplus (a truechimer beyond `keep`), or not yet ranked. */
export type SourceRole = "candidate" | "kept" | "falseticker" | "surplus";

export interface SourceStatus {
  id: number;
  source: string;
  host: string;
  port: number;
  address: string | undefined;
  state: SourceState;
  role: SourceRole;
  why: string;
  intervalS: number;
  /** Monotonic seconds of the next request; Infinity while waiting for a reply or on standby. */
  nextAt: number;
  failures: number;
  lastSample: Sample | undefined;
  lastKiss: string | undefined;
  distanceS: number | undefined;
}

export interface Estimate {
  source: string;
  address: string;
  offsetS: number;
  distanceS: number;
  sample: Sample;
}

interface Exchange {
  id: number;
  source: Source;
  address: string;
  port: number;
  transmit: Uint8Array;
  t1Ms: number;
  burst: boolean;
}

interface TimedSample {
  sample: Sample;
  atS: number;
}

interface Source {
  id: number;
  spec: ServerSpec;
  label: string;
  state: SourceState;
  role: SourceRole;
  why: string;
  schedule: PollSchedule;
  nextAt: number;
  address: ResolvedAddress | undefined;
  port: number;
  needResolve: boolean;
  resolving: boolean;
  avoid: string | undefined;
  failures: number;
  exchange: Exchange | undefined;
  samples: TimedSample[];
  lastKiss: string | undefined;
  distanceS: number | undefined;
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
    this.sources = servers.map((spec, id) => ({
      id,
      spec: { host: spec.host, port: spec.port },
      label: formatServer(spec.host, spec.port),
      state: "active",
      role: "candidate",
      why: "",
      schedule: new PollSchedule(poll),
      nextAt: Number.POSITIVE_INFINITY,
      address: undefined,
      port: spec.port,
      needResolve: true,
      resolving: false,
      avoid: undefined,
      failures: 0,
      exchange: undefined,
      samples: [],
      lastKiss: undefined,
      distanceS: undefined,
    }));
  }

  /** Schedules every source's first request after its random start delay. Call once. */
  start(now: number): void {
    if (this.started) throw new ClientError("ERR_CLIENT_STATE", "start() called twice");
    this.started = true;
    for (const s of this.sources) s.nextAt = now + s.schedule.start(this.random);
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
      if (s.address && !s.needResolve && this.isRefused(s.address.address, s.port, wallMs)) {
        // Another source, or an earlier run, was told to stop using this address.
        s.needResolve = true;
        s.avoid = s.address.address;
      }
      if (s.needResolve || !s.address) {
        s.resolving = true;
        out.push({ type: "resolve", source: s.id, host: s.spec.host });
      } else {
        this.send(s, wallMs, out);
      }
    }
    return out;
  }

  /**
   * The answer to a "resolve" action: the addresses the name has now, or why it has none. Chooses one at
   * random among the usable ones, and sends the request if it is due (a resolution that follows a DENY or
   * RSTR is made at once, but the request to the new address waits for its interval).
   */
  resolved(
    now: number,
    wallMs: number,
    sourceId: number,
    result: readonly ResolvedAddress[] | { error: string },
  ): ClientAction[] {
    const s = this.sourceById(sourceId);
    const out: ClientAction[] = [];
    if (!s.resolving) return out;
    s.resolving = false;
    if (!Array.isArray(result) || result.length === 0) {
      const error = Array.isArray(result) ? "the name has no address" : (result as { error: string }).error;
      const nextS = s.schedule.failed(this.random);
      s.nextAt = s.state === "standby" ? Number.POSITIVE_INFINITY : now + nextS;
      out.push(event({ kind: "resolve-failed", source: s.label, error, nextS }));
      return out;
    }
    const all = (result as readonly ResolvedAddress[]).map((a) => ({
      address: unmapAddress(a.address),
      family: familyOf(unmapAddress(a.address)),
    }));
    const usable = all.filter((a) => !this.isRefused(a.address, s.spec.port, wallMs));
    if (usable.length === 0) {
      // Stop sending NTP; look the name up again hourly, in case it gets new addresses (DNS only).
      const reason = "every address refused us (DENY/RSTR); none is asked again until its refusal expires";
      const nextS =
        Math.max(STOPPED_RECHECK_S, s.schedule.ceilingS) * (1 + this.options.jitter * this.random());
      s.state = "stopped";
      s.why = reason;
      s.role = "candidate";
      s.address = undefined;
      s.nextAt = now + nextS;
      out.push(event({ kind: "stopped", source: s.label, reason, nextS }));
      return out;
    }
    const fresh = usable.filter((a) => a.address !== s.avoid);
    const pool = fresh.length > 0 ? fresh : usable;
    const chosen = pool[Math.min(pool.length - 1, Math.floor(this.random() * pool.length))]!;
    s.address = chosen;
    s.port = s.spec.port;
    s.needResolve = false;
    s.avoid = undefined;
    s.failures = 0;
    if (s.state === "stopped") {
      s.state = "active";
      s.why = "";
    }
    out.push(
      event({
        kind: "resolved",
        source: s.label,
        addresses: all.map((a) => a.address),
        chosen: chosen.address,
      }),
    );
    if (s.state !== "standby" && now >= s.nextAt) this.send(s, wallMs, out);
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
    const s = ex.source;
    const fromAddress = unmapAddress(from.address);
    const ignore = (reason: IgnoreReason) => ({
      accepted: false,
      actions: [event({ kind: "ignored", source: s.label, from: fromAddress, fromPort: from.port, reason })],
    });
    const match = matchReply(ex, data, from, this.options.followRedirects);
    if (!match.ok) return ignore(match.reason);
    const sameServer = !match.redirected;
    if (match.redirected && this.isRefused(fromAddress, from.port, wallMs)) return ignore("refused-address");
    const verdict = evaluateReply(data, ex.transmit, ex.t1Ms, wallMs);
    if (!verdict.ok && (verdict.reason === "short" || verdict.reason === "not-server-mode")) {
      return ignore("not-a-reply");
    }
    this.finish(ex);
    const out: ClientAction[] = [];
    if (!sameServer) {
      out.push(
        event({ kind: "redirect", source: s.label, from: ex.address, to: fromAddress, port: from.port }),
      );
      s.address = { address: fromAddress, family: familyOf(fromAddress) };
      s.port = from.port;
    }
    const here = { source: s.label, address: fromAddress, port: from.port };
    if (verdict.ok) {
      s.failures = 0;
      s.lastKiss = undefined;
      s.samples.push({ sample: verdict.sample, atS: now });
      if (s.samples.length > FILTER_LENGTH) s.samples.shift();
      const nextS = s.schedule.valid(verdict.sample.offsetMs / 1000, this.random);
      this.schedule(s, now, nextS);
      out.push(
        event({
          kind: "sample",
          ...here,
          sample: verdict.sample,
          intervalS: s.schedule.intervalS,
          nextS,
          burst: ex.burst,
          redirected: !sameServer,
        }),
      );
      this.select(now, out);
      return { accepted: true, actions: out };
    }
    if (verdict.reason === "kiss") {
      const code = uint32ToKissCode(verdict.kissCode ?? 0);
      s.lastKiss = code;
      const action = kissCodeInfo(code)?.action ?? "info";
      if (action === "reduce") {
        const serverPoll = (data[OFF_POLL]! << 24) >> 24;
        const nextS = s.schedule.rate(serverPoll, this.random);
        this.schedule(s, now, nextS);
        out.push(event({ kind: "kiss", ...here, code, action, intervalS: s.schedule.intervalS, nextS }));
      } else if (action === "stop") {
        const refusal: Refusal = {
          address: fromAddress,
          port: from.port,
          host: s.spec.host,
          code: code as "DENY" | "RSTR",
          sinceMs: wallMs,
          untilMs: wallMs + this.options.refusalExpiry * 1000,
        };
        this.refusals = addRefusal(activeRefusals(this.refusals, wallMs), refusal);
        out.push({ type: "refuse", refusal, refusals: [...this.refusals] });
        // Stop using this address: the name is resolved again now and another address chosen, if there is
        // one (else the source stops); the request to it waits for a backoff interval.
        s.needResolve = true;
        s.avoid = fromAddress;
        s.failures = 0;
        s.samples = [];
        const nextS = s.schedule.failed(this.random);
        this.schedule(s, now, nextS);
        out.push(
          event({
            kind: "kiss",
            ...here,
            code,
            action,
            intervalS: s.schedule.intervalS,
            nextS,
            untilMs: refusal.untilMs,
          }),
        );
        if (s.state !== "standby") {
          s.resolving = true;
          out.push({ type: "resolve", source: s.id, host: s.spec.host });
        }
        this.select(now, out);
      } else {
        const nextS = this.failure(s, now);
        out.push(event({ kind: "kiss", ...here, code, action, intervalS: s.schedule.intervalS, nextS }));
      }
      return { accepted: true, actions: out };
    }
    const nextS = this.failure(s, now);
    out.push(
      event({ kind: "unusable", ...here, reason: verdict.reason, intervalS: s.schedule.intervalS, nextS }),
    );
    return { accepted: true, actions: out };
  }

  /** The reply wait of `exchange` ended with no accepted reply. */
  timeout(now: number, exchange: number): ClientAction[] {
    const ex = this.exchanges.get(exchange);
    if (!ex) return [];
    this.finish(ex);
    const s = ex.source;
    const nextS = this.failure(s, now);
    const out: ClientAction[] = [
      event({
        kind: "no-reply",
        source: s.label,
        address: ex.address,
        port: ex.port,
        intervalS: s.schedule.intervalS,
        nextS,
      }),
    ];
    this.select(now, out);
    return out;
  }

  /** Every source's state, for displays and tests. */
  status(): SourceStatus[] {
    return this.sources.map((s) => ({
      id: s.id,
      source: s.label,
      host: s.spec.host,
      port: s.port,
      address: s.address?.address,
      state: s.state,
      role: s.role,
      why: s.why,
      intervalS: s.schedule.intervalS,
      nextAt: s.nextAt,
      failures: s.failures,
      lastSample: s.samples.at(-1)?.sample,
      lastKiss: s.lastKiss,
      distanceS: s.distanceS,
    }));
  }

  /** Our offset according to the best kept source (lowest root distance), if any has a recent sample. */
  estimate(now: number): Estimate | undefined {
    let best: Estimate | undefined;
    for (const s of this.sources) {
      if (s.role !== "kept" || s.state !== "active" || !s.address) continue;
      const c = this.candidate(s, now);
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

  private send(s: Source, wallMs: number, out: ClientAction[]): void {
    const address = s.address!;
    const request = buildRequest(wallMs, this.random, Math.log2(s.schedule.intervalS));
    const ex: Exchange = {
      id: this.nextExchangeId++,
      source: s,
      address: address.address,
      port: s.port,
      transmit: request.transmit,
      t1Ms: wallMs,
      burst: s.schedule.inBurst,
    };
    this.exchanges.set(ex.id, ex);
    s.exchange = ex;
    s.nextAt = Number.POSITIVE_INFINITY;
    out.push({
      type: "send",
      exchange: ex.id,
      source: s.id,
      address: address.address,
      family: address.family,
      port: s.port,
      packet: request.packet,
    });
  }

  private finish(ex: Exchange): void {
    this.exchanges.delete(ex.id);
    if (ex.source.exchange === ex) ex.source.exchange = undefined;
  }

  private schedule(s: Source, now: number, delayS: number): void {
    s.nextAt = s.state === "standby" ? Number.POSITIVE_INFINITY : now + delayS;
  }

  /** An unanswered or unusable exchange: back off, and after `reselectAfter` in a row, choose again. */
  private failure(s: Source, now: number): number {
    s.failures++;
    const nextS = s.schedule.failed(this.random);
    if (s.failures >= this.options.reselectAfter) {
      s.needResolve = true;
      s.avoid = s.address?.address;
      s.failures = 0;
    }
    this.schedule(s, now, nextS);
    return nextS;
  }

  /** Hold time of a sample: three of this source's longest intervals. */
  private holdS(s: Source): number {
    return 3 * s.schedule.ceilingS;
  }

  private candidate(s: Source, now: number): (Candidate & { sample: Sample }) | undefined {
    const latest = s.samples.at(-1);
    if (!latest || now - latest.atS > this.holdS(s)) return undefined;
    // The clock filter's choice (RFC 5905 §10): the least delay among the recent samples.
    let best = latest;
    for (const t of s.samples) if (t.sample.delayMs < best.sample.delayMs) best = t;
    let jitter = 0;
    if (s.samples.length > 1) {
      let sum = 0;
      for (let i = 1; i < s.samples.length; i++) {
        const d = (s.samples[i]!.sample.offsetMs - s.samples[i - 1]!.sample.offsetMs) / 1000;
        sum += d * d;
      }
      jitter = Math.sqrt(sum / (s.samples.length - 1));
    }
    const distanceS = rootDistance(best.sample, now - best.atS, jitter);
    return { id: s.id, offsetS: best.sample.offsetMs / 1000, distanceS, sample: best.sample };
  }

  /** Runs the selection over the active sources with a recent sample; reports a change of outcome. */
  private select(now: number, out: ClientAction[]): void {
    const candidates: Candidate[] = [];
    for (const s of this.sources) {
      s.distanceS = undefined;
      if (s.state !== "active") continue;
      const c = this.candidate(s, now);
      if (c) {
        candidates.push({ id: c.id, offsetS: c.offsetS, distanceS: c.distanceS });
        s.distanceS = c.distanceS;
      }
    }
    const sel = selectTruechimers(candidates);
    const kept = sel.truechimers.slice(0, this.options.keep);
    const surplus = sel.truechimers.slice(this.options.keep);
    for (const id of kept) this.sources[id]!.role = "kept";
    for (const id of sel.falsetickers) this.demote(this.sources[id]!, "falseticker");
    for (const id of surplus) this.demote(this.sources[id]!, "surplus");
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

  private demote(s: Source, role: "falseticker" | "surplus"): void {
    s.role = role;
    s.state = "standby";
    s.why =
      role === "falseticker"
        ? "falseticker: its time disagrees with the majority"
        : `surplus: ${this.options.keep} servers with a lower root distance are kept`;
    s.nextAt = Number.POSITIVE_INFINITY;
  }

  /** Wakes surplus sources while fewer than `keep` active sources are healthy (a fresh sample, or new). */
  private wake(now: number, out: ClientAction[]): void {
    let healthy = 0;
    for (const s of this.sources) {
      if (s.state !== "active") continue;
      const fresh = this.candidate(s, now) !== undefined;
      const unproven = s.samples.length === 0 && s.failures === 0 && !s.lastKiss;
      if (fresh || unproven) healthy++;
    }
    for (const s of this.sources) {
      if (healthy >= this.options.keep) break;
      if (s.state !== "standby" || s.role !== "surplus") continue;
      s.state = "active";
      s.role = "candidate";
      s.why = "";
      s.samples = [];
      s.needResolve = true; // names are resolved again at each selection
      s.nextAt = now + this.random() * s.schedule.options.startSpread;
      healthy++;
      out.push(
        event({ kind: "woken", source: s.label, reason: `fewer than ${this.options.keep} healthy servers` }),
      );
    }
  }
}
