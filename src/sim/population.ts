// What a simulated population is: a set of client slots, each with at most one pending request, and two
// methods the engine calls at a slot's time. `emit` decides whether the slot sends now and from which
// address and port; `react` is told what came back (an answer, a kiss-o'-death and its code, or nothing)
// and returns the slot's next time. The same two methods drive the virtual-time engine (engine.ts), where
// the outcome is known at once from the simulated servers, and the live load generator (live.ts), where it
// comes back over a real socket or times out: so a population behaves the same in both.
//
// Behaviour that §2, §3 and §11 of the paper care about lives in the populations: how often a client asks,
// what it does when unanswered (back off, or retry every second like the Wisconsin routers), and whether
// it obeys a kiss-o'-death (RATE: slow down; DENY and RSTR: stop) or ignores it.

import { KISS_DENY, KISS_RATE, KISS_RSTR, uint32ToKissCode } from "../protocol/index.ts";
import type { Random } from "./random.ts";

/** The request was answered (a valid server reply). */
export const OUT_ANSWERED = 0;
/** A kiss-o'-death came back; its code is in the population's `kiss`. */
export const OUT_KISSED = 1;
/** Nothing came back: dropped by the server, lost on the way, or the path is down. */
export const OUT_NOTHING = 2;
/** emit() chose not to send at this time. */
export const OUT_SKIPPED = 3;

export const OUTCOME_NAMES = ["answered", "kissed", "nothing", "skipped"] as const;

/** What a client that obeys kiss-o'-death does with one (RFC 5905 §7.4, paper §11). */
export const KISS_IGNORE = 0;
export const KISS_SLOW_DOWN = 1;
export const KISS_STOP = 2;

/** The action an obedient client takes for a kiss code: RATE slows down, DENY and RSTR stop. */
export function kissAction(code: number): number {
  if (code === KISS_RATE) return KISS_SLOW_DOWN;
  if (code === KISS_DENY || code === KISS_RSTR) return KISS_STOP;
  return KISS_IGNORE;
}

/** Per-population counts of what its clients sent and got. */
export interface PopulationCounts {
  sent: number;
  answered: number;
  kissed: number;
  /** Nothing came back (dropped by a server or lost). */
  nothing: number;
  /** Kisses received, by kiss code ("RATE", "RSTR", ...). */
  kisses: Record<string, number>;
}

/** What the engine (or the live runner) gives a population when it is added. */
export interface PopulationContext {
  /** This population's own seeded stream. */
  readonly rnd: Random;
  /** Run length in seconds (virtual time runs from 0). */
  readonly duration: number;
  /** Virtual Unix time of t = 0, in ms (used for "on the hour"). */
  readonly startMs: number;
  /** Puts slot `slot` in the queue at time `t` (seconds from the start). */
  schedule(slot: number, t: number): void;
}

export abstract class Population {
  /** Short unique name within a run ("mice", "scripts", "routers"). */
  readonly name: string;
  /** What it models, for reports. */
  abstract readonly description: string;
  /** Whether its packets are "elephant" packets (for the balancer scenario's share caught). */
  elephant = false;
  /** Client slots (engine ids). */
  abstract readonly slots: number;
  /** Distinct source addresses it uses (the engine gives it that many, from `addrBase`). */
  abstract readonly addresses: number;
  /** First address (IPv4 as an unsigned 32-bit number), set by the engine or the live runner. */
  addrBase = 0;
  /** A fixed server index (a hard-coded server address, §3), or -1 to go through the balancer. */
  server = -1;
  /** Set by emit(): the request's source address (IPv4, unsigned 32-bit) and port. */
  outAddr = 0;
  outPort = 0;
  /** Set before react() on OUT_KISSED: the kiss code (refid as a 32-bit number). */
  kiss = 0;

  readonly counts: PopulationCounts = { sent: 0, answered: 0, kissed: 0, nothing: 0, kisses: {} };
  /** The population's own seeded stream, from its context (open()). */
  protected rnd!: Random;

  constructor(name: string) {
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(name))
      throw new RangeError(`bad population name ${JSON.stringify(name)}`);
    this.name = name;
  }

  /** Checks the numeric parameter `key`; the error names it as `<name>.<key>`. */
  protected param(key: string, value: number, min: number, max?: number): number {
    return checkParam(`${this.name}.${key}`, value, min, max);
  }

  /** Checks the integer parameter `key`; the error names it as `<name>.<key>`. */
  protected intParam(key: string, value: number, min: number, max?: number): number {
    return checkInt(`${this.name}.${key}`, value, min, max);
  }

  /** A factor uniform in [1 - spread, 1 + spread): one draw of a client's jitter around its interval. */
  protected jitterFactor(spread: number): number {
    return 1 + spread * (2 * this.rnd.float() - 1);
  }

  /** A source port drawn as an operating system picks an ephemeral one: 1024 to 65535. */
  protected randomPort(): number {
    return 1024 + this.rnd.int(64512);
  }

  /** For emit(): the request goes from the population's `index`-th address and `port`. */
  protected sendFrom(index: number, port: number): true {
    this.outAddr = (this.addrBase + index) >>> 0;
    this.outPort = port;
    return true;
  }

  /**
   * What the client does with `outcome` (§11): the kiss's action when a kiss came back and it obeys
   * kisses (`obeys`), else KISS_IGNORE.
   */
  protected kissReply(outcome: number, obeys: boolean): number {
    return outcome === OUT_KISSED && obeys ? kissAction(this.kiss) : KISS_IGNORE;
  }

  /** The engine or the live runner starts the population: keeps its stream, then start(). */
  open(ctx: PopulationContext): void {
    this.rnd = ctx.rnd;
    this.start(ctx);
  }

  /** Schedules the first request of every active slot. */
  protected abstract start(ctx: PopulationContext): void;
  /** Whether slot `slot` sends at time `t`; if so sets outAddr and outPort. */
  abstract emit(slot: number, t: number): boolean;
  /** The outcome of what the slot did at `t`; returns its next time (> t), or Infinity to stop. */
  abstract react(slot: number, t: number, outcome: number): number;
  /** Parameters for reports (plain JSON). */
  abstract params(): Record<string, unknown>;

  /**
   * Seconds the slot's client waits for a reply before it takes the request as unanswered. Only the live
   * runner needs it (in the engine the outcome is known at once): a client that sends every second cannot
   * wait longer than a second, or the wait would slow it down.
   */
  replyWait(_slot: number): number {
    return 1;
  }

  /** Counts an outcome (the engine and the live runner call this, once per request sent). */
  record(outcome: number): void {
    const c = this.counts;
    c.sent++;
    if (outcome === OUT_ANSWERED) c.answered++;
    else if (outcome === OUT_KISSED) {
      c.kissed++;
      const code = uint32ToKissCode(this.kiss);
      c.kisses[code] = (c.kisses[code] ?? 0) + 1;
    } else c.nothing++;
  }
}

/**
 * `count` clients with a slot each and, unless they share one address (a NAT firewall, §4), an address
 * each: every population but the settled stream and the burstmakers. The count is the first parameter
 * checked, as `<name>.count`.
 */
export abstract class Clients extends Population {
  readonly slots: number;
  readonly addresses: number;
  /** The kind of client, first in params(). */
  protected readonly kind: string;
  /** The options with their defaults filled in, reported by params() after the kind. */
  abstract readonly o: object;

  constructor(name: string, kind: string, count: number, sharedAddress = false) {
    super(name);
    this.kind = kind;
    this.slots = this.intParam("count", count, 1);
    this.addresses = sharedAddress ? 1 : this.slots;
  }

  params(): Record<string, unknown> {
    return { kind: this.kind, ...this.o };
  }
}

/** Checks a numeric parameter; throws RangeError naming it. */
export function checkParam(name: string, value: number, min: number, max = Number.POSITIVE_INFINITY): number {
  if (typeof value !== "number" || !(value >= min && value <= max)) {
    throw new RangeError(`${name} must be a number from ${min} to ${max}, got ${value}`);
  }
  return value;
}

/** Checks an integer parameter; throws RangeError naming it. */
export function checkInt(name: string, value: number, min: number, max = 2 ** 23): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}
