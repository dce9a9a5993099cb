// One simulated time server: the SAME decision pipeline the real server runs (src/core/defences.ts: access
// list, blocklist, packet checks, MRU list, call-gap, kiss-o'-death limiter), fed with requests built by the
// protocol code and virtual receive times. This file is the only place where the simulator calls the
// decision core, so that a change to the core's interface is adapted here and nowhere else.
//
// Each simulated server owns its own Defences (its own MRU list, KoD limiter and blocklist), as each
// machine behind the paper's load balancers did (§5, §12): that is what makes balancing matter. Their
// random numbers (MRU admission sampling, call-gap leak) come from the run's seeded stream.
//
// Per packet: the 48-byte request template is copied into one reused buffer (the core writes the reply or
// the kiss-o'-death over it), the core decides, and the reason is counted. Nothing is allocated.

import { type Config, defaultConfig } from "../config/index.ts";
import { Defences } from "../core/defences.ts";
import { REASON_COUNT, REASON_RESPONSE, RESPONSE_KISSED, RESPONSE_SERVED } from "../core/reasons.ts";
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
  /** Packets received, by reason (src/core/reasons.ts). */
  readonly reasons = new Float64Array(REASON_COUNT);
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

  private readonly buf = new Uint8Array(NTP_HEADER_LENGTH);
  private readonly buf32: Uint32Array;
  private readonly template32: Uint32Array;

  constructor(name: string, config: Config, rnd: Random, startMs: number) {
    this.name = name;
    this.config = config;
    this.defences = Defences.fromConfig(config, { rng: rnd.rng30() });
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
   * Returns the reason the core gave; for a kiss, `lastKiss` holds its code.
   */
  handle(key: Uint32Array, port: number, nowMs: number): number {
    const b = this.buf32;
    const t = this.template32;
    for (let i = 0; i < 12; i++) b[i] = t[i]!;
    const reason = this.defences.decide(this.buf, NTP_HEADER_LENGTH, key, port, nowMs, this.state);
    this.reasons[reason]!++;
    this.received++;
    const response = REASON_RESPONSE[reason];
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
