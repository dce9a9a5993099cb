// One simulated time server: the SAME decision pipeline the real server runs (src/core/defences.ts: access
// list, blocklist, packet checks, MRU list, call-gap, kiss-o'-death limiter, overload control), fed with
// requests built by the protocol code and virtual receive times. This file is the only place where the
// simulator calls the decision core, so that a change to the core's interface is adapted here and nowhere
// else.
//
// Each simulated server owns its own Defences (its own MRU list, KoD limiter and blocklist), as each
// machine behind the paper's load balancers did (§5, §12): that is what makes balancing matter. Their
// random numbers (MRU admission sampling, call-gap leak, overload periods) come from the run's seeded
// stream, and so does the seed of overload control's pool hash.
//
// A server may have a capacity: the answers it can send per second (§2: "about 5,000 PPS" at half a
// processor). Past it, answers are lost the way a socket's receive queue loses requests when the server
// drains it more slowly than they arrive: whoever's request arrives when the queue is full is dropped,
// which to the clients is loss at random, mice and elephants alike. The queue is a budget of answers
// earned at `capacity` a second and held up to a tenth of a second's worth (a socket buffer of a few
// hundred kilobytes at that rate); an answer the core decided on finds a unit of budget or is dropped as
// R_OVER_CAPACITY. The decision runs first, so the MRU list sees every request where a real kernel would
// have dropped some before the server read them; what overload control counts as demand is the same
// either way (requests about to be answered).
//
// Per packet: the 48-byte request template is copied into one reused buffer (the core writes the reply or
// the kiss-o'-death over it), the core decides, and the reason is counted. Nothing is allocated.

import { type Config, defaultConfig } from "../config/index.ts";
import { Defences } from "../core/defences.ts";
import {
  REASON_COUNT,
  REASON_NAMES,
  REASON_RESPONSE,
  RESPONSE_DROPPED,
  RESPONSE_KISSED,
  RESPONSE_SERVED,
} from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import {
  MODE_CLIENT,
  NTP_HEADER_LENGTH,
  NTP_VERSION,
  OFF_REFID,
  OFF_TRANSMIT_TS,
} from "../protocol/index.ts";
import { snapshotFromMru } from "../survey/from-mru.ts";
import type { Snapshot } from "../survey/snapshot.ts";
import type { Random } from "./random.ts";

/**
 * The simulator's own reason, after the core's: the core would have answered, but the server was past its
 * capacity (a full socket queue). Counted like the core's reasons, by the name "drop_capacity".
 */
export const R_OVER_CAPACITY = REASON_COUNT;
/** The core's reasons and the simulator's: what the engine counts by. */
export const SIM_REASON_COUNT = REASON_COUNT + 1;
export const SIM_REASON_NAMES: readonly string[] = Object.freeze([...REASON_NAMES, "drop_capacity"]);
export const SIM_REASON_RESPONSE: readonly number[] = Object.freeze([...REASON_RESPONSE, RESPONSE_DROPPED]);

/** Seconds of answers the capacity's queue holds: a burst it absorbs before it drops. */
export const QUEUE_SECONDS = 0.1;

/** A partial configuration laid over another: every section and key optional. */
export type ConfigPatch = { [S in keyof Config]?: Partial<Config[S]> };

/** `base` with the keys of `patch` replaced (sections merged one level deep), frozen like a loaded one. */
export function patchConfig(base: Config, patch: ConfigPatch | undefined): Config {
  if (!patch) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(patch)) {
    if (values === undefined) continue;
    const current = (base as Record<string, unknown>)[section];
    if (current === undefined) throw new RangeError(`unknown configuration section [${section}]`);
    for (const key of Object.keys(values)) {
      if (!Object.hasOwn(current as object, key)) {
        throw new RangeError(`unknown configuration key ${section}.${key}`);
      }
    }
    out[section] = Object.freeze({ ...(current as object), ...values });
  }
  return Object.freeze(out) as Config;
}

/** The configuration of a simulated server: the defaults with a scenario's patch. */
export function simConfig(patch?: ConfigPatch, base: Config = defaultConfig()): Config {
  return patchConfig(base, patch);
}

/** What a stratum-2 server synchronised to its upstream says about its clock in every reply. */
function serveState(nowMs: number): ServeState {
  return {
    leap: 0,
    stratum: 2,
    precision: -20,
    rootDelay: 0.001,
    rootDispersion: 0.001,
    dispersionRate: 0,
    refId: 0x7f7f0001,
    refTimeMs: nowMs,
    offsetMs: 0,
    answerSymmetric: true,
  };
}

export class SimServer {
  readonly name: string;
  readonly config: Config;
  readonly defences: Defences;
  readonly state: ServeState;
  /** Packets received, by reason (src/core/reasons.ts, then R_OVER_CAPACITY). */
  readonly reasons = new Float64Array(SIM_REASON_COUNT);
  received = 0;
  served = 0;
  kissed = 0;
  dropped = 0;
  /** Addresses this server put on its blocklist. */
  blocked = 0;
  /** When it started, Unix seconds (virtual). */
  readonly startedAt: number;
  /** The kiss code (refid) of the last kissed reply. */
  lastKiss = 0;
  /** Answers per second it can send; 0 = no limit. */
  readonly capacity: number;
  /** Answers it would have sent past its capacity (R_OVER_CAPACITY). */
  overCapacity = 0;

  private readonly buf = new Uint8Array(NTP_HEADER_LENGTH);
  private readonly buf32: Uint32Array;
  private readonly template32: Uint32Array;
  // The capacity's queue: units of budget held (at most `depth`), and the virtual Unix ms they were counted at.
  private budget: number;
  private budgetAt: number;
  private readonly depth: number;

  constructor(name: string, config: Config, rnd: Random, startMs: number, capacity = 0) {
    if (!(capacity >= 0 && Number.isFinite(capacity))) {
      throw new RangeError(`capacity must be a number of answers per second >= 0, got ${capacity}`);
    }
    this.name = name;
    this.config = config;
    // The pool hash's seed from a stream of its own, so that the server's stream draws as before.
    const hashSeed = rnd.derive("overload-pools").next32() & 0x3fffffff;
    this.defences = Defences.fromConfig(config, { rng: rnd.rng30(), hashSeed });
    this.capacity = capacity;
    this.depth = Math.max(1, capacity * QUEUE_SECONDS);
    this.budget = this.depth;
    this.budgetAt = startMs;
    this.state = serveState(startMs);
    this.startedAt = startMs / 1000;
    // A plain NTPv4 client request, as ntpd, chrony or an SNTP client sends it: mode 3, poll 6, and a
    // transmit timestamp (its value does not matter to the decision).
    const template = new Uint8Array(NTP_HEADER_LENGTH);
    template[0] = (NTP_VERSION << 3) | MODE_CLIENT;
    template[2] = 6;
    new DataView(template.buffer).setUint32(OFF_TRANSMIT_TS, 0xe0000000);
    this.template32 = new Uint32Array(template.buffer);
    this.buf32 = new Uint32Array(this.buf.buffer);
  }

  /**
   * One client request from `key` (address key, 4 words) and `port`, received at `nowMs` (virtual Unix ms).
   * Returns the reason the core gave, or R_OVER_CAPACITY for an answer past the capacity; for a kiss,
   * `lastKiss` holds its code.
   */
  handle(key: Uint32Array, port: number, nowMs: number): number {
    const b = this.buf32;
    const t = this.template32;
    for (let i = 0; i < 12; i++) b[i] = t[i]!;
    let reason = this.defences.decide(this.buf, NTP_HEADER_LENGTH, key, port, nowMs, this.state);
    let response = REASON_RESPONSE[reason];
    if (response === RESPONSE_SERVED && this.capacity > 0 && !this.spend(nowMs)) {
      reason = R_OVER_CAPACITY;
      response = RESPONSE_DROPPED;
      this.overCapacity++;
    }
    this.reasons[reason]!++;
    this.received++;
    if (response === RESPONSE_SERVED) this.served++;
    else if (response === RESPONSE_KISSED) {
      this.kissed++;
      const p = this.buf;
      this.lastKiss =
        ((p[OFF_REFID]! << 24) | (p[OFF_REFID + 1]! << 16) | (p[OFF_REFID + 2]! << 8) | p[OFF_REFID + 3]!) >>>
        0;
      if (this.defences.newBlockCount > 0) {
        this.blocked += this.defences.newBlockCount;
        this.defences.newBlockCount = 0;
      }
    } else this.dropped++;
    return reason;
  }

  /** Takes one answer's budget at `nowMs` if there is any (the queue drained meanwhile at `capacity`). */
  private spend(nowMs: number): boolean {
    if (nowMs > this.budgetAt) {
      this.budget = Math.min(this.budget + ((nowMs - this.budgetAt) * this.capacity) / 1000, this.depth);
      this.budgetAt = nowMs;
    }
    if (this.budget < 1) return false;
    this.budget -= 1;
    return true;
  }

  /**
   * The server's MRU list as the survey reads it (src/survey/snapshot.ts), at virtual time `nowMs`: what the
   * real server's /api/snapshot serves, built from the same MruList.
   */
  snapshot(nowMs: number): Snapshot {
    return snapshotFromMru(this.defences.mru, {
      server: this.name,
      takenAt: nowMs / 1000,
      startedAt: this.startedAt,
      counters: { received: this.received, served: this.served, kissed: this.kissed, dropped: this.dropped },
    });
  }
}
