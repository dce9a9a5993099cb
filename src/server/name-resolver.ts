// The I/O half of the reverse-DNS access lists (paper §10, docs/defences-names.md): takes the lookups a
// worker's NameGate (src/defence/names-cache.ts) queued, asks the resolver, and settles the verdicts.
//
// One lookup, for address A:
//   1. PTR of A (node:dns Resolver.resolvePtr of A's in-addr.arpa or ip6.arpa name, asked of the configured
//      resolvers "ADDR:PORT").
//   2. Forward confirmation: for each PTR name (the first MAX_PTR_NAMES), A records (IPv4) or AAAA records
//      (IPv6); the first name whose records contain A is A's name. A PTR record is written by whoever holds
//      the reverse zone of A, that is the client's own network: it can claim any name ("x.mil"). The forward
//      records of x.mil are written by the holder of the name, so a name that points back is one both
//      agree on. A PTR whose names do not point back is "forged" and counts as no name.
//   3. Verdict: the rules on the confirmed name (first match, else the default) kept for `ttl`; with no
//      confirmed name (no PTR, forged PTR, lookup failed or timed out) the default, kept for `negative-ttl`.
//
// The gate has already applied the limits (at most max-concurrent pending, max-rate new lookups a second)
// before a lookup reaches this file, so nothing here can be flooded; this file adds the deadline: a lookup
// that takes longer than `timeout` in all is settled as a timeout (no name: the default verdict), and what
// it would still have asked is not asked.
//
// Runs in the worker thread's event loop: kick() after a packet schedules one drain with setImmediate, so a
// batch of packets costs one drain, and the packet path never waits for DNS.

import { Resolver } from "node:dns/promises";
import { formatAddressKey, isIPv4Key, KEY_WORDS, parseAddressKey } from "../defence/address-key.ts";
import { NAME_COUNTER_NAMES, type NameGate } from "../defence/names-cache.ts";
import { normalizeName } from "../defence/names-rules.ts";

/** PTR names tried for forward confirmation, at most (an address with dozens of names is not a client). */
export const MAX_PTR_NAMES = 4;

export interface NameResolverOptions {
  /** Resolvers, "ADDR:PORT" or "[ADDR]:PORT"; empty = the system's (/etc/resolv.conf). */
  servers?: readonly string[];
  /** Most time one lookup may take, PTR and forward confirmation together, in seconds (default 2). */
  timeout?: number;
  /** The clock the gate is checked with, Unix ms (default Date.now). */
  now?: () => number;
  /** Called once per finished lookup (for logs and tests). */
  onLookup?: (result: NameLookupResult) => void;
}

/** How a lookup ended. */
export type NameOutcome = "confirmed" | "forged" | "no-name" | "failed" | "timeout";

export interface NameLookupResult {
  address: string;
  outcome: NameOutcome;
  /** The confirmed name (outcome "confirmed"), canonical. */
  name: string | null;
  /** The PTR names received (raw), if any. */
  ptr: readonly string[];
  /** NAME_ALLOW or NAME_DENY, as settled. */
  verdict: number;
  /** The DNS error code of a failed lookup ("ETIMEOUT", "ESERVFAIL", "ECONNREFUSED", ...). */
  error: string | null;
  elapsedMs: number;
}

export interface NameResolverStats {
  /** Lookups started (each one PTR query, then at most MAX_PTR_NAMES forward queries). */
  started: number;
  /** ... that found a name pointing back to the address. */
  confirmed: number;
  /** ... that found PTR names, none of which points back. */
  forged: number;
  /** ... that found no PTR record (NXDOMAIN or no data). */
  noName: number;
  /** ... that failed with a DNS error (server failure, refused, unreachable), timeouts not included. */
  failed: number;
  /** ... that took longer than `timeout`. */
  timedOut: number;
  /** Lookups in progress now, and the most there ever were at once. */
  inFlight: number;
  maxInFlight: number;
  /**
   * The gate's counters (NAME_COUNTER_NAMES: allowed, denied, pending, queued, refused_rate, ...) and the
   * entries in its cache: server-wide, since the gate is shared. The lookup counts above are this thread's.
   */
  gate: Record<string, number>;
  cached: number;
}

/**
 * The name of the PTR record of the address `key` (RFC 1035 §3.5, RFC 3596 §2.5): "d.c.b.a.in-addr.arpa"
 * for IPv4 (and IPv4-mapped) keys, 32 reversed nibbles under "ip6.arpa" otherwise. Asked with resolvePtr
 * rather than Resolver.reverse, which reports every failure (timeout, refusal, server failure) as
 * ENOTFOUND, indistinguishable from "no PTR record".
 */
export function reverseDnsName(key: Uint32Array): string {
  if (isIPv4Key(key)) {
    const v = key[3]! >>> 0;
    return `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}.in-addr.arpa`;
  }
  const nibbles: string[] = [];
  for (let w = KEY_WORDS - 1; w >= 0; w--) {
    const v = key[w]! >>> 0;
    for (let shift = 0; shift < 32; shift += 4) nibbles.push(((v >>> shift) & 15).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}

/** DNS answers that mean "there is no such record" (as opposed to "could not find out"). */
function isNotFound(code: string | undefined): boolean {
  return code === "ENOTFOUND" || code === "ENODATA";
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "EUNKNOWN";
}

function sameKey(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}

interface Found {
  outcome: "confirmed" | "forged" | "no-name" | "failed";
  name: string | null;
  ptr: readonly string[];
  error: string | null;
}

/** Lookups for one worker's NameGate. */
export class NameResolver {
  readonly gate: NameGate;
  private resolver: Resolver;
  private servers: readonly string[];
  private timeoutMs: number;
  private readonly now: () => number;
  private readonly onLookup: ((result: NameLookupResult) => void) | undefined;
  private scheduled: NodeJS.Immediate | null = null;
  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly counts = {
    started: 0,
    confirmed: 0,
    forged: 0,
    noName: 0,
    failed: 0,
    timedOut: 0,
    inFlight: 0,
    maxInFlight: 0,
  };
  private readonly pumpNow = () => {
    this.scheduled = null;
    this.pump();
  };

  constructor(gate: NameGate, options: NameResolverOptions = {}) {
    this.gate = gate;
    this.now = options.now ?? Date.now;
    this.onLookup = options.onLookup;
    this.servers = [];
    this.timeoutMs = 0;
    this.resolver = this.makeResolver(options.servers ?? [], options.timeout ?? 2);
  }

  private makeResolver(servers: readonly string[], timeout: number): Resolver {
    if (!(timeout > 0 && Number.isFinite(timeout))) throw new RangeError("timeout must be seconds > 0");
    const timeoutMs = Math.max(1, Math.round(timeout * 1000));
    // One try per query: the deadline below bounds the whole lookup anyway, and a retry of a query that
    // went unanswered doubles the load on a resolver that is probably overloaded already.
    const r = new Resolver({ timeout: timeoutMs, tries: 1 });
    if (servers.length > 0) r.setServers([...servers]);
    this.servers = [...servers];
    this.timeoutMs = timeoutMs;
    return r;
  }

  /**
   * New resolver addresses or timeout (lookups in progress finish with the old ones). The gate is
   * reconfigured by its owner.
   */
  reconfigure(options: { servers?: readonly string[]; timeout?: number }): void {
    const servers = options.servers ?? this.servers;
    const timeout = options.timeout ?? this.timeoutMs / 1000;
    if (servers.join(",") === this.servers.join(",") && Math.round(timeout * 1000) === this.timeoutMs) return;
    this.resolver = this.makeResolver(servers, timeout);
  }

  /** After packets: if the gate queued lookups, drain them once the current I/O callbacks are done. */
  kick(): void {
    if (this.scheduled !== null || this.closed || this.gate.queued === 0) return;
    this.scheduled = setImmediate(this.pumpNow);
  }

  /** Starts every queued lookup now. */
  pump(): void {
    if (this.closed) return;
    this.gate.drain((key) => {
      void this.lookup(key);
    });
  }

  /** Whether lookups are in progress or queued: their answers need this thread's event loop to turn. */
  get busy(): boolean {
    return this.counts.inFlight !== 0 || (!this.closed && this.gate.queued !== 0);
  }

  /** Resolves once no lookup is in progress and none is queued (tests, shutdown). */
  idle(): Promise<void> {
    if (this.counts.inFlight === 0 && (this.closed || this.gate.queued === 0)) return Promise.resolve();
    this.kick();
    return new Promise((res) => this.idleWaiters.push(res));
  }

  /** Stops: no new lookups; queued ones are released, results still arriving are ignored. */
  close(): void {
    this.closed = true;
    if (this.scheduled !== null) clearImmediate(this.scheduled);
    this.scheduled = null;
    this.gate.drain((key) => this.gate.release(key));
    this.resolver.cancel();
    this.wakeIdle();
  }

  stats(): NameResolverStats {
    const gate: Record<string, number> = {};
    NAME_COUNTER_NAMES.forEach((n, i) => {
      gate[n] = this.gate.counters[i]!;
    });
    return { ...this.counts, gate, cached: this.gate.size };
  }

  private wakeIdle(): void {
    if (this.counts.inFlight !== 0 || (!this.closed && this.gate.queued !== 0)) return;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async lookup(key: Uint32Array): Promise<void> {
    const c = this.counts;
    c.started++;
    c.inFlight++;
    if (c.inFlight > c.maxInFlight) c.maxInFlight = c.inFlight;
    const address = formatAddressKey(key);
    const t0 = this.now();
    let timer: NodeJS.Timeout | undefined;
    const run = { expired: false };
    const deadline = new Promise<null>((res) => {
      timer = setTimeout(() => {
        run.expired = true;
        res(null);
      }, this.timeoutMs);
    });
    let found: Found | null;
    try {
      found = await Promise.race([this.find(this.resolver, key, run), deadline]);
    } catch (e) {
      // find() catches DNS errors itself; anything else is a bug, still settled as a failure.
      found = { outcome: "failed", name: null, ptr: [], error: errorCode(e) };
    } finally {
      clearTimeout(timer);
    }
    c.inFlight--;
    if (this.closed) {
      this.gate.release(key);
      this.wakeIdle();
      return;
    }
    const outcome: NameOutcome = found === null ? "timeout" : found.outcome;
    switch (outcome) {
      case "confirmed":
        c.confirmed++;
        break;
      case "forged":
        c.forged++;
        break;
      case "no-name":
        c.noName++;
        break;
      case "failed":
        c.failed++;
        break;
      case "timeout":
        c.timedOut++;
        break;
    }
    const name = found?.name ?? null;
    const gate = this.gate;
    const verdict = gate.verdictFor(name);
    const now = this.now();
    gate.settle(key, verdict, name !== null ? gate.ttlMs : gate.negativeTtlMs, now);
    this.onLookup?.({
      address,
      outcome,
      name,
      ptr: found?.ptr ?? [],
      verdict,
      error: found === null ? "ETIMEOUT" : found.error,
      elapsedMs: now - t0,
    });
    this.wakeIdle();
  }

  /**
   * PTR, then forward confirmation of each name in turn, stopping once `run.expired` (the lookup has been
   * settled as a timeout). Never throws for DNS errors.
   */
  private async find(r: Resolver, key: Uint32Array, run: { expired: boolean }): Promise<Found> {
    let ptr: string[];
    try {
      ptr = await r.resolvePtr(reverseDnsName(key));
    } catch (e) {
      const code = errorCode(e);
      if (isNotFound(code)) return { outcome: "no-name", name: null, ptr: [], error: null };
      return { outcome: "failed", name: null, ptr: [], error: code };
    }
    if (ptr.length === 0) return { outcome: "no-name", name: null, ptr, error: null };
    const v4 = isIPv4Key(key);
    const back = new Uint32Array(KEY_WORDS);
    let error: string | null = null;
    for (const raw of ptr.slice(0, MAX_PTR_NAMES)) {
      if (run.expired) break; // already settled as a timeout: ask nothing more
      const name = normalizeName(raw);
      if (name === undefined) continue; // not a host name: cannot be confirmed
      let addresses: string[];
      try {
        addresses = v4 ? await r.resolve4(name) : await r.resolve6(name);
      } catch (e) {
        const code = errorCode(e);
        if (!isNotFound(code)) error = code;
        continue;
      }
      for (const a of addresses) {
        if (parseAddressKey(a, back) && sameKey(back, key)) {
          return { outcome: "confirmed", name, ptr, error: null };
        }
      }
    }
    // No name points back. If a forward query could not be answered, we do not know that the PTR is
    // forged: call it a failure (the same verdict, but counted apart, since it says the resolver is ill).
    return error !== null
      ? { outcome: "failed", name: null, ptr, error }
      : { outcome: "forged", name: null, ptr, error: null };
  }
}
