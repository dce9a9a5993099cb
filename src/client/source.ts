// One server as the client sees it, a "source" (RFC 5905's peer process; ntpd-rs draws the same line
// between a source and the system): when to ask it, at which address, which datagram is its reply, and
// what a reply or a kiss-o'-death changes. Pure, like the system that owns it (core.ts), which keeps the
// set of sources, the refusals they share, the numbering of exchanges and the selection among sources;
// a source is told what happened and pushes the actions that follow.
//
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
// - What it offers the selection (RFC 5905 §10): the clock filter's choice among its recent samples, the
//   one of least delay, with its root distance.

import { kissCodeInfo, OFF_POLL, uint32ToKissCode } from "../protocol/index.ts";
import { familyOf, formatServer, type ResolvedAddress, unmapAddress } from "./address.ts";
import { type ClientAction, event } from "./events.ts";
import { type IgnoreReason, matchReply } from "./match.ts";
import { buildRequest, evaluateReply, rootDistance, type Sample } from "./measure.ts";
import type { ClientOptions, ServerSpec } from "./options.ts";
import { type PollOptions, PollSchedule } from "./poll.ts";
import type { Random } from "./random.ts";
import { redirectOf } from "./redirect.ts";
import type { Candidate } from "./select.ts";
import type { Refusal } from "./state-file.ts";

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

/** A request in flight: where it went, what its reply must echo, and when it left (T1). */
export interface Exchange {
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
  /** Monotonic seconds of its arrival, for its age. */
  atS: number;
}

/** What every source shares, held by the system: options, randomness, and the refusals in force. */
export interface SourceContext {
  readonly options: Readonly<ClientOptions>;
  readonly random: Random;
  /** Whether a DENY/RSTR for this address and port is in force at `wallMs`. */
  isRefused(address: string, port: number, wallMs: number): boolean;
  /** Records a DENY/RSTR; returns every refusal then in force, for the state file. */
  refuse(refusal: Refusal, wallMs: number): Refusal[];
}

/** A source's answer to a datagram: `accepted` ends the exchange; `select` asks for the selection again. */
export interface SourceReceipt {
  accepted: boolean;
  actions: ClientAction[];
  select: boolean;
}

export class Source {
  readonly id: number;
  readonly spec: ServerSpec;
  /** The server as configured, "host:port": how events name this source. */
  readonly label: string;
  readonly schedule: PollSchedule;
  state: SourceState = "active";
  role: SourceRole = "candidate";
  /** Why it is stopped or on standby, for status displays. */
  why = "";
  /** Monotonic seconds of the next request (or resolution); Infinity while on standby or in an exchange. */
  nextAt = Number.POSITIVE_INFINITY;
  address: ResolvedAddress | undefined = undefined;
  /** The port asked: the configured one, or the one a followed redirect came from. */
  port: number;
  needResolve = true;
  resolving = false;
  /** The address that just failed or refused us: not chosen again while there is another. */
  avoid: string | undefined = undefined;
  /** Consecutive failed polls of the current address. */
  failures = 0;
  exchange: Exchange | undefined = undefined;
  samples: TimedSample[] = [];
  lastKiss: string | undefined = undefined;
  /** Root distance at the last selection, if it had a recent sample. */
  distanceS: number | undefined = undefined;
  private readonly context: SourceContext;

  constructor(id: number, spec: ServerSpec, poll: Readonly<PollOptions>, context: SourceContext) {
    this.id = id;
    this.spec = { host: spec.host, port: spec.port };
    this.label = formatServer(spec.host, spec.port);
    this.schedule = new PollSchedule(poll);
    this.port = spec.port;
    this.context = context;
  }

  /** Schedules the first request after the random start delay. */
  start(now: number): void {
    this.nextAt = now + this.schedule.start(this.context.random);
  }

  /** Whether the name must be resolved before the next request: no address yet, or one to replace. */
  needsResolution(wallMs: number): boolean {
    if (
      this.address &&
      !this.needResolve &&
      this.context.isRefused(this.address.address, this.port, wallMs)
    ) {
      // Another source, or an earlier run, was told to stop using this address.
      this.needResolve = true;
      this.avoid = this.address.address;
    }
    return this.needResolve || !this.address;
  }

  /** The action that asks the shell to resolve the name; no request until its answer. */
  resolve(): ClientAction {
    this.resolving = true;
    return { type: "resolve", source: this.id, host: this.spec.host };
  }

  /**
   * The answer to a "resolve" action: chooses an address at random among the usable ones, or stops the
   * source if every one refused us. True when the request is due now (a resolution that follows a DENY or
   * RSTR is made at once, but the request to the new address waits for its interval).
   */
  resolved(
    now: number,
    wallMs: number,
    result: readonly ResolvedAddress[] | { error: string },
    out: ClientAction[],
  ): boolean {
    const { options, random } = this.context;
    if (!this.resolving) return false;
    this.resolving = false;
    if (!Array.isArray(result) || result.length === 0) {
      const error = Array.isArray(result) ? "the name has no address" : (result as { error: string }).error;
      const nextS = this.schedule.failed(random);
      this.scheduleIn(now, nextS);
      out.push(event({ kind: "resolve-failed", source: this.label, error, nextS }));
      return false;
    }
    const all = (result as readonly ResolvedAddress[]).map((a) => ({
      address: unmapAddress(a.address),
      family: familyOf(unmapAddress(a.address)),
    }));
    const usable = all.filter((a) => !this.context.isRefused(a.address, this.spec.port, wallMs));
    if (usable.length === 0) {
      // Stop sending NTP; look the name up again hourly, in case it gets new addresses (DNS only).
      const reason = "every address refused us (DENY/RSTR); none is asked again until its refusal expires";
      const nextS = Math.max(STOPPED_RECHECK_S, this.schedule.ceilingS) * (1 + options.jitter * random());
      this.state = "stopped";
      this.why = reason;
      this.role = "candidate";
      this.address = undefined;
      this.nextAt = now + nextS;
      out.push(event({ kind: "stopped", source: this.label, reason, nextS }));
      return false;
    }
    const fresh = usable.filter((a) => a.address !== this.avoid);
    const pool = fresh.length > 0 ? fresh : usable;
    const chosen = pool[Math.min(pool.length - 1, Math.floor(random() * pool.length))]!;
    this.address = chosen;
    this.port = this.spec.port;
    this.needResolve = false;
    this.avoid = undefined;
    this.failures = 0;
    if (this.state === "stopped") {
      this.state = "active";
      this.why = "";
    }
    out.push(
      event({
        kind: "resolved",
        source: this.label,
        addresses: all.map((a) => a.address),
        chosen: chosen.address,
      }),
    );
    return this.state !== "standby" && now >= this.nextAt;
  }

  /** Sends a request to the current address as exchange `id`; no other request until it ends. */
  send(wallMs: number, id: number, out: ClientAction[]): Exchange {
    const address = this.address!;
    const request = buildRequest(
      wallMs,
      this.context.random,
      Math.log2(this.schedule.intervalS),
      this.context.options.followRedirects,
    );
    const ex: Exchange = {
      id,
      source: this,
      address: address.address,
      port: this.port,
      transmit: request.transmit,
      t1Ms: wallMs,
      burst: this.schedule.inBurst,
    };
    this.exchange = ex;
    this.nextAt = Number.POSITIVE_INFINITY;
    out.push({
      type: "send",
      exchange: ex.id,
      source: this.id,
      address: address.address,
      family: address.family,
      port: this.port,
      packet: request.packet,
    });
    return ex;
  }

  /**
   * A datagram arrived during exchange `ex` from `from`, at `wallMs` (T4). Not accepted: it was not the
   * reply, and the wait goes on. Accepted: the exchange is over, and the sample, kiss or failure is taken.
   */
  receive(
    now: number,
    wallMs: number,
    ex: Exchange,
    data: Uint8Array,
    from: { address: string; port: number },
  ): SourceReceipt {
    const { options, random } = this.context;
    const fromAddress = unmapAddress(from.address);
    const ignore = (reason: IgnoreReason): SourceReceipt => ({
      accepted: false,
      actions: [
        event({ kind: "ignored", source: this.label, from: fromAddress, fromPort: from.port, reason }),
      ],
      select: false,
    });
    const match = matchReply(ex, data, from, options.followRedirects);
    if (!match.ok) return ignore(match.reason);
    const sameServer = !match.redirected;
    if (match.redirected && this.context.isRefused(fromAddress, from.port, wallMs)) {
      return ignore("refused-address");
    }
    const verdict = evaluateReply(data, ex.transmit, ex.t1Ms, wallMs);
    if (!verdict.ok && (verdict.reason === "short" || verdict.reason === "not-server-mode")) {
      return ignore("not-a-reply");
    }
    this.finish(ex);
    const out: ClientAction[] = [];
    if (!sameServer) {
      out.push(
        event({ kind: "redirect", source: this.label, from: ex.address, to: fromAddress, port: from.port }),
      );
      this.address = { address: fromAddress, family: familyOf(fromAddress) };
      this.port = from.port;
    }
    const here = { source: this.label, address: fromAddress, port: from.port };
    // The reply to our request, from the server we asked, names another server (the redirection field,
    // §8): that one from the next poll on. Only a good sample counts, and never a server refused before.
    const next = sameServer && verdict.ok && options.followRedirects ? redirectOf(data) : undefined;
    if (next !== undefined && !this.context.isRefused(next.address, next.port, wallMs)) {
      out.push(
        event({ kind: "redirect", source: this.label, from: fromAddress, to: next.address, port: next.port }),
      );
      this.address = { address: next.address, family: familyOf(next.address) };
      this.port = next.port;
    }
    if (verdict.ok) {
      this.failures = 0;
      this.lastKiss = undefined;
      this.samples.push({ sample: verdict.sample, atS: now });
      if (this.samples.length > FILTER_LENGTH) this.samples.shift();
      const nextS = this.schedule.valid(verdict.sample.offsetMs / 1000, random);
      this.scheduleIn(now, nextS);
      out.push(
        event({
          kind: "sample",
          ...here,
          sample: verdict.sample,
          intervalS: this.schedule.intervalS,
          nextS,
          burst: ex.burst,
          redirected: !sameServer,
        }),
      );
      return { accepted: true, actions: out, select: true };
    }
    if (verdict.reason === "kiss") {
      const code = uint32ToKissCode(verdict.kissCode ?? 0);
      this.lastKiss = code;
      const action = kissCodeInfo(code)?.action ?? "info";
      if (action === "reduce") {
        const serverPoll = (data[OFF_POLL]! << 24) >> 24;
        const nextS = this.schedule.rate(serverPoll, random);
        this.scheduleIn(now, nextS);
        out.push(event({ kind: "kiss", ...here, code, action, intervalS: this.schedule.intervalS, nextS }));
        return { accepted: true, actions: out, select: false };
      }
      if (action === "stop") {
        const refusal: Refusal = {
          address: fromAddress,
          port: from.port,
          host: this.spec.host,
          code: code as "DENY" | "RSTR",
          sinceMs: wallMs,
          untilMs: wallMs + options.refusalExpiry * 1000,
        };
        out.push({ type: "refuse", refusal, refusals: this.context.refuse(refusal, wallMs) });
        // Stop using this address: the name is resolved again now and another address chosen, if there is
        // one (else the source stops); the request to it waits for a backoff interval.
        this.needResolve = true;
        this.avoid = fromAddress;
        this.failures = 0;
        this.samples = [];
        const nextS = this.schedule.failed(random);
        this.scheduleIn(now, nextS);
        out.push(
          event({
            kind: "kiss",
            ...here,
            code,
            action,
            intervalS: this.schedule.intervalS,
            nextS,
            untilMs: refusal.untilMs,
          }),
        );
        if (this.state !== "standby") out.push(this.resolve());
        return { accepted: true, actions: out, select: true };
      }
      const nextS = this.failure(now);
      out.push(event({ kind: "kiss", ...here, code, action, intervalS: this.schedule.intervalS, nextS }));
      return { accepted: true, actions: out, select: false };
    }
    const nextS = this.failure(now);
    out.push(
      event({ kind: "unusable", ...here, reason: verdict.reason, intervalS: this.schedule.intervalS, nextS }),
    );
    return { accepted: true, actions: out, select: false };
  }

  /** The reply wait of `ex` ended with no accepted reply: back off; the no-reply event. */
  timeout(now: number, ex: Exchange): ClientAction {
    this.finish(ex);
    const nextS = this.failure(now);
    return event({
      kind: "no-reply",
      source: this.label,
      address: ex.address,
      port: ex.port,
      intervalS: this.schedule.intervalS,
      nextS,
    });
  }

  /** What the selection sees of this source: the clock filter's sample and its root distance, if recent. */
  candidate(now: number): (Candidate & { sample: Sample }) | undefined {
    const latest = this.samples.at(-1);
    if (!latest || now - latest.atS > this.holdS()) return undefined;
    // The clock filter's choice (RFC 5905 §10): the least delay among the recent samples.
    let best = latest;
    for (const t of this.samples) if (t.sample.delayMs < best.sample.delayMs) best = t;
    let jitter = 0;
    if (this.samples.length > 1) {
      let sum = 0;
      for (let i = 1; i < this.samples.length; i++) {
        const d = (this.samples[i]!.sample.offsetMs - this.samples[i - 1]!.sample.offsetMs) / 1000;
        sum += d * d;
      }
      jitter = Math.sqrt(sum / (this.samples.length - 1));
    }
    const distanceS = rootDistance(best.sample, now - best.atS, jitter);
    return { id: this.id, offsetS: best.sample.offsetMs / 1000, distanceS, sample: best.sample };
  }

  /** Active, and either with a recent sample or not yet tried (no sample, failure or kiss so far). */
  healthy(now: number): boolean {
    if (this.state !== "active") return false;
    const fresh = this.candidate(now) !== undefined;
    const unproven = this.samples.length === 0 && this.failures === 0 && !this.lastKiss;
    return fresh || unproven;
  }

  /** Put on standby by the selection: no more requests until woken. */
  demote(role: "falseticker" | "surplus"): void {
    this.role = role;
    this.state = "standby";
    this.why =
      role === "falseticker"
        ? "falseticker: its time disagrees with the majority"
        : `surplus: ${this.context.options.keep} servers with a lower root distance are kept`;
    this.nextAt = Number.POSITIVE_INFINITY;
  }

  /** Back from standby: a fresh start, its name resolved again (names are resolved at each selection). */
  wake(now: number): void {
    this.state = "active";
    this.role = "candidate";
    this.why = "";
    this.samples = [];
    this.needResolve = true;
    this.nextAt = now + this.context.random() * this.schedule.options.startSpread;
  }

  status(): SourceStatus {
    return {
      id: this.id,
      source: this.label,
      host: this.spec.host,
      port: this.port,
      address: this.address?.address,
      state: this.state,
      role: this.role,
      why: this.why,
      intervalS: this.schedule.intervalS,
      nextAt: this.nextAt,
      failures: this.failures,
      lastSample: this.samples.at(-1)?.sample,
      lastKiss: this.lastKiss,
      distanceS: this.distanceS,
    };
  }

  private finish(ex: Exchange): void {
    if (this.exchange === ex) this.exchange = undefined;
  }

  private scheduleIn(now: number, delayS: number): void {
    this.nextAt = this.state === "standby" ? Number.POSITIVE_INFINITY : now + delayS;
  }

  /** An unanswered or unusable exchange: back off, and after `reselectAfter` in a row, choose again. */
  private failure(now: number): number {
    this.failures++;
    const nextS = this.schedule.failed(this.context.random);
    if (this.failures >= this.context.options.reselectAfter) {
      this.needResolve = true;
      this.avoid = this.address?.address;
      this.failures = 0;
    }
    this.scheduleIn(now, nextS);
    return nextS;
  }

  /** Hold time of a sample: three of this source's longest intervals. */
  private holdS(): number {
    return 3 * this.schedule.ceilingS;
  }
}
