// The whole per-packet decision with the paper's defences, in one fixed order (docs/defences.md):
//
//   access list `ignore` (§10) -> blocklist (§11) -> packet checks and mode (RFC 5905) -> MRU update (§5)
//   -> access list `noserve` (§10) -> call-gap (§12) -> KoD limiter (§11) -> overload control (§12) -> reply
//
// A client is its source's prefix where addresses are cheap: IPv4 /32 and IPv6 /64 by default ([mru]
// ipv4-prefix, ipv6-prefix). The access list and the blocklist look at the whole source address; the MRU
// record, the call-gap, the KoD limiter and an automatic blocklist entry use the prefix (docs/defences-mru.md).
//
// Each packet ends in exactly one reason (src/core/reasons.ts). Pure like decide.ts: the time comes in as an
// argument and nothing is allocated per packet; the only shared state is the MRU list and the KoD limiter
// (SharedArrayBuffers, so that a client spread over several worker threads has one record) and this
// thread's copy of the blocklist.
//
// Why this order: `ignore` and the blocklist come first because they must cost nothing (an elephant already
// shot should not even be parsed). Malformed packets never create MRU records: their address and mode mean
// nothing. Every well-formed packet is recorded, whatever its mode, so that monitoring sees mode 4/5/7
// floods too. Only requests we would answer are gapped and kissed; a KoD is never sent to modes 2, 4 or 5
// (they never reach that point), which is what keeps two servers from kissing each other forever.
// Overload control comes last, for requests about to be answered: what it saves is the answer, so it counts
// as demand only what would cost one; a request the call-gap refuses anyway is no load to share out.

import {
  ACL_IGNORE,
  ACL_KOD,
  ACL_LIMITED,
  ACL_NOMRULIST,
  ACL_NOSERVE,
  type AclRuleInput,
  type AclTable,
  parseAclRules,
} from "../defence/acl.ts";
import { hashKeyWords, isIPv4Key, KEY_BITS, maskKey } from "../defence/address-key.ts";
import { Blocklist } from "../defence/blocklist.ts";
import { type CallGapConfig, callGap, createCallGap, GAP_PASS_LEAK, isGapped } from "../defence/callgap.ts";
import { KOD_SEND, KodLimiter } from "../defence/kod-limiter.ts";
import { MruList } from "../defence/mru.ts";
import { NAME_PENDING, NameGate } from "../defence/names-cache.ts";
import { NAME_DENY, type NameConfigLike, nameGateOptions } from "../defence/names-rules.ts";
import {
  CLASS_KNOWN,
  CLASS_MOUSE,
  CLASS_NEW,
  OVERLOAD_WITHHOLD,
  OverloadControl,
} from "../defence/overload.ts";
import { createRng, type Rng } from "../defence/random.ts";
import { KISS_DENY, KISS_RATE, KISS_RSTR } from "../protocol/index.ts";
import { decide, writeKod, writeReplyAt } from "./decide.ts";
import {
  R_DROP_ACL_IGNORE,
  R_DROP_ACL_NOSERVE,
  R_DROP_BLOCKLISTED,
  R_DROP_GAPPED,
  R_DROP_KOD_LIMITED,
  R_DROP_KOD_LIMITED_DENIED,
  R_DROP_NAME_DENY,
  R_DROP_NAME_PENDING,
  R_DROP_OVERLOAD,
  R_KISS_DENY,
  R_KISS_RATE,
  R_KISS_RSTR,
  R_MALFORMED_OTHER,
  R_MALFORMED_TOO_SHORT,
  R_SERVED_LEAK,
  REASON_RESPONSE,
  RESPONSE_SERVED,
} from "./reasons.ts";
import type { ServeState } from "./serve-state.ts";

/** Addresses newly blocked by this thread, waiting for the shell to persist and share them. */
const NEW_BLOCKS_MAX = 256;

/** Shared pieces made once by the main thread and attached by every worker. */
export interface SharedDefences {
  mru: SharedArrayBuffer;
  kod: SharedArrayBuffer;
  /** The reverse-DNS verdict cache (src/defence/names-cache.ts). */
  names: SharedArrayBuffer;
  /** Overload control's classes and pools (src/defence/overload.ts). */
  overload: SharedArrayBuffer;
}

export interface DefenceOptions {
  /** Random numbers in [0, 2^30): MRU admission sampling, call-gap leak. Default: createRng(). */
  rng?: Rng;
  /** Attach to these shared buffers instead of creating new ones. */
  shared?: SharedDefences;
  /** Threads that decide packets (overload control keeps a slot for each); default 1. With `shared`, ignored. */
  workers?: number;
  /** This thread's slot among them, 0-based; default 0. */
  slot?: number;
  /** Seed of overload control's pool hash (30 bits); random unless given, as a repeatable simulation needs. */
  hashSeed?: number;
}

/**
 * The settings the defences read, in seconds and per-second rates: the configuration's [mru], [callgap],
 * [kod], [blocklist], [acl] and [names] sections, as much of them as is used here. The file's Config
 * (src/config) has this shape, so a caller passes its Config as is, and the core imports no configuration.
 */
export interface DefenceSettings {
  readonly mru: {
    readonly maxEntries: number;
    readonly maxMemory: number;
    readonly maxAge: number;
    readonly admitProbability: number;
    /** Prefix length by which IPv4 clients are known (8-32; 32 = each address). */
    readonly ipv4Prefix: number;
    /** Prefix length by which IPv6 clients are known (16-128; 64 = one subnet, what one host may own). */
    readonly ipv6Prefix: number;
  };
  readonly callgap: {
    readonly enabled: boolean;
    readonly mode: "rules" | "token-bucket";
    readonly minimum: number;
    readonly tolerance: number;
    readonly average: number;
    readonly burst: number;
    readonly fast: number;
    readonly fastQuiet: number;
    readonly leak: number;
    readonly interval: number;
  };
  readonly kod: { readonly enabled: boolean; readonly maxRate: number };
  readonly blocklist: { readonly enabled: boolean; readonly afterKods: number; readonly duration: number };
  readonly acl: { readonly rule: readonly AclRuleInput[]; readonly default: readonly string[] };
  readonly names: NameConfigLike;
  readonly overload: {
    readonly enabled: boolean;
    readonly redline: number;
    readonly mouseInterval: number;
    readonly periodMin: number;
    readonly periodMax: number;
    readonly protectIntervals: number;
    readonly protectMax: number;
  };
}

/** The settings a SIGHUP may change without a restart. */
interface Live {
  acl: AclTable;
  callgap: CallGapConfig;
  callgapEnabled: boolean;
  kodEnabled: boolean;
  blocklistEnabled: boolean;
  afterKods: number;
  /** How long an automatic blocklist entry lasts, ms; 0 = for ever. */
  blockDurationMs: number;
  overloadEnabled: boolean;
  /** Seconds of averaged interval from which a never-gapped client is a mouse. */
  mouseInterval: number;
  /** The client prefix lengths in key bits: 96 + [mru] ipv4-prefix for IPv4 (mapped) sources, ipv6-prefix. */
  ipv4Bits: number;
  ipv6Bits: number;
}

function liveOf(settings: DefenceSettings): Live {
  const c = settings.callgap;
  return {
    acl: parseAclRules(settings.acl.rule, settings.acl.default),
    callgap: createCallGap({
      mode: c.mode,
      minimum: c.minimum,
      tolerance: c.tolerance,
      average: c.average,
      burst: c.burst,
      fast: c.fast,
      fastQuiet: c.fastQuiet,
      leak: c.leak,
      interval: c.interval,
    }),
    callgapEnabled: c.enabled,
    kodEnabled: settings.kod.enabled,
    blocklistEnabled: settings.blocklist.enabled,
    afterKods: settings.blocklist.afterKods,
    blockDurationMs: settings.blocklist.duration * 1000,
    overloadEnabled: settings.overload.enabled,
    mouseInterval: settings.overload.mouseInterval,
    ipv4Bits: 96 + settings.mru.ipv4Prefix,
    ipv6Bits: settings.mru.ipv6Prefix,
  };
}

/** What the MRU list protects from a flood of newcomers, from [overload]; none when overload control is off. */
function protectionOf(settings: DefenceSettings) {
  const o = settings.overload;
  return o.enabled
    ? { mouseInterval: o.mouseInterval, intervals: o.protectIntervals, maxSilence: o.protectMax }
    : undefined;
}

/** One thread's view of the defences. */
export class Defences {
  readonly mru: MruList;
  readonly kod: KodLimiter;
  readonly blocklist: Blocklist;
  /** Reverse-DNS name rules (paper §10): the shared verdict cache, this thread's lookup queue. */
  readonly names: NameGate;
  readonly rng: Rng;
  /** Overload control (paper §12): this thread's slot of the shared classes and pools. */
  readonly overload: OverloadControl;
  live: Live;
  /** Keys (4 words each) and expiries of addresses this thread blocked since the last drainNewBlocks(). */
  readonly newBlockKeys = new Uint32Array(NEW_BLOCKS_MAX * 4);
  readonly newBlockExpiry = new Float64Array(NEW_BLOCKS_MAX);
  readonly newBlockKods = new Uint32Array(NEW_BLOCKS_MAX);
  /** Their prefix lengths in key bits (128: one address). */
  readonly newBlockBits = new Uint8Array(NEW_BLOCKS_MAX);
  newBlockCount = 0;
  /** Blocks that did not fit in the queue before it was drained (still blocked here, not persisted). */
  newBlocksLost = 0;
  /** "now" of the packet being decided, Unix ms (decideNow reads it; see there). */
  readonly time = new Float64Array(1);
  /** The client key of the packet being decided when shorter than its source: the source masked. */
  readonly clientKey = new Uint32Array(4);

  private constructor(
    mru: MruList,
    kod: KodLimiter,
    live: Live,
    rng: Rng,
    names: NameGate,
    overload: OverloadControl,
  ) {
    this.names = names;
    this.overload = overload;
    this.mru = mru;
    this.kod = kod;
    this.live = live;
    this.rng = rng;
    this.blocklist = new Blocklist();
  }

  /**
   * Builds every defence from a validated configuration (its Config, or any DefenceSettings): a new MRU
   * list and KoD limiter, or views of shared ones (`options.shared`, from another thread's `shared()`).
   */
  static fromConfig(settings: DefenceSettings, options: DefenceOptions = {}): Defences {
    const rng = options.rng ?? createRng();
    const m = settings.mru;
    const mru = options.shared
      ? MruList.attach(options.shared.mru, rng)
      : MruList.create(
          {
            maxEntries: m.maxEntries,
            maxMemory: m.maxMemory,
            maxAge: m.maxAge,
            admitProbability: m.admitProbability,
            protection: protectionOf(settings),
          },
          rng,
        );
    const kod = options.shared
      ? KodLimiter.attach(options.shared.kod)
      : KodLimiter.create({ clientInterval: settings.callgap.average, maxRate: settings.kod.maxRate });
    const names = options.shared
      ? NameGate.attach(options.shared.names, nameGateOptions(settings.names))
      : NameGate.create(nameGateOptions(settings.names));
    const o = settings.overload;
    const overload = options.shared
      ? OverloadControl.attach(options.shared.overload, options.slot ?? 0, rng)
      : OverloadControl.create(
          {
            workers: options.workers ?? 1,
            periodMin: o.periodMin,
            periodMax: o.periodMax,
            hashSeed: options.hashSeed,
          },
          rng,
        );
    // A configured redline is every worker's; 0 leaves it to the shell's measurement (nextAutoRedline).
    if (o.redline > 0) overload.setRedline(o.redline);
    return new Defences(mru, kod, liveOf(settings), rng, names, overload);
  }

  /** The buffers another thread attaches to. */
  shared(): SharedDefences {
    return {
      mru: this.mru.buffer,
      kod: this.kod.buffer,
      names: this.names.buffer,
      overload: this.overload.buffer,
    };
  }

  /**
   * Applies a reloaded configuration's live settings (access list, call-gap, KoD and blocklist switches,
   * client prefix lengths). The KoD limits are shared: any thread's reconfigure changes them for all. The
   * MRU list's size is fixed at start. Records made under other prefix lengths stay until they age out;
   * the clients' packets make new records under the new ones.
   */
  reconfigure(settings: DefenceSettings): void {
    this.live = liveOf(settings);
    this.kod.setLimits({ clientInterval: settings.callgap.average, maxRate: settings.kod.maxRate });
    this.names.reconfigure(nameGateOptions(settings.names));
    const o = settings.overload;
    this.mru.setProtection(protectionOf(settings));
    this.overload.setPeriods(o.periodMin, o.periodMax);
    // A configured redline replaces the measured one; back to 0 (automatic), the measurement starts afresh.
    this.overload.setRedline(o.redline);
  }

  /**
   * The key by which a client at `source` is known (its prefix, docs/defences-mru.md), written into `out`;
   * returns the prefix length in key bits. For lookups by address off the per-packet path (ntpq's mrulist).
   */
  clientKeyOf(source: Uint32Array, out: Uint32Array): number {
    const bits = isIPv4Key(source) ? this.live.ipv4Bits : this.live.ipv6Bits;
    maskKey(source, bits, out);
    return bits;
  }

  private queueBlock(key: Uint32Array, expiresMs: number, kods: number, bits: number): void {
    const n = this.newBlockCount;
    if (n >= NEW_BLOCKS_MAX) {
      this.newBlocksLost++;
      return;
    }
    const o = n * 4;
    this.newBlockKeys[o] = key[0]!;
    this.newBlockKeys[o + 1] = key[1]!;
    this.newBlockKeys[o + 2] = key[2]!;
    this.newBlockKeys[o + 3] = key[3]!;
    this.newBlockExpiry[n] = expiresMs;
    this.newBlockKods[n] = kods;
    this.newBlockBits[n] = bits;
    this.newBlockCount = n + 1;
  }

  /**
   * Calls `fn` for each address or prefix (`bits`: its length in key bits, 128 for an address) blocked since
   * the last call, then empties the queue. Allocates (rare).
   */
  drainNewBlocks(fn: (key: Uint32Array, expiresMs: number, kods: number, bits: number) => void): void {
    for (let i = 0; i < this.newBlockCount; i++) {
      fn(
        this.newBlockKeys.slice(i * 4, i * 4 + 4),
        this.newBlockExpiry[i]!,
        this.newBlockKods[i]!,
        this.newBlockBits[i]!,
      );
    }
    this.newBlockCount = 0;
  }

  /**
   * One packet through the whole pipeline. `key` is the source address (src/defence/address-key.ts), `port`
   * its port, `nowMs` the receive time (Unix ms, already corrected by state.offsetMs). On a served reason
   * the reply is written over `buf` (stamp the transmit time just before sending); on a kissed one the KoD
   * is written over `buf` and must be sent as is. Returns the reason; REASON_RESPONSE says which.
   */
  decide(
    buf: Uint8Array,
    length: number,
    key: Uint32Array,
    port: number,
    nowMs: number,
    state: ServeState,
  ): number {
    this.time[0] = nowMs;
    return this.decideNow(buf, length, key, port, state);
  }

  /**
   * decide at the time in `this.time[0]` (Unix ms): the hot path's form. Time travels in typed arrays, never
   * as a double argument (which V8 boxes, one allocation per call, when it does not inline the callee).
   */
  decideNow(buf: Uint8Array, length: number, key: Uint32Array, port: number, state: ServeState): number {
    const nowMs = this.time[0]!;
    this.blocklist.clock[0] = nowMs;
    const live = this.live;
    const flags = live.acl.lookup(key);
    if ((flags & ACL_IGNORE) !== 0) return R_DROP_ACL_IGNORE;
    if (live.blocklistEnabled && this.blocklist.size > 0 && this.blocklist.hasNow(key)) {
      return R_DROP_BLOCKLISTED;
    }
    const names = this.names;
    if (names.active) {
      names.clock[0] = nowMs;
      const v = names.checkNow(key);
      if (v === NAME_DENY) return this.nameDenied(flags, buf, length, state);
      if (v === NAME_PENDING && names.dropPending) return R_DROP_NAME_PENDING;
    }
    let reason = decide(buf, length, state);
    if (reason >= R_MALFORMED_TOO_SHORT && reason <= R_MALFORMED_OTHER) return reason; // malformed: no record
    const served = REASON_RESPONSE[reason] === RESPONSE_SERVED;
    const mru = this.mru;
    const nowS = nowMs / 1000;
    mru.clock[0] = nowS;
    this.kod.clock[0] = nowS;
    // The client: the source masked to its prefix, once per packet into this thread's scratch key (no copy
    // when the prefix is the whole address, as IPv4 by default).
    const bits = isIPv4Key(key) ? live.ipv4Bits : live.ipv6Bits;
    let client = key;
    if (bits < KEY_BITS) {
      client = this.clientKey;
      maskKey(key, bits, client);
    }
    let r = -1;
    mru.lock();
    try {
      if ((flags & ACL_NOMRULIST) === 0) {
        const first = buf[0]!;
        r = mru.touchNowLocked(client, first & 7, (first >> 3) & 7, port);
        // A record keyed by the whole address already holds it as its source (one byte read, not five
        // stores); a prefix's record, or one made under another prefix length before a reload, is told.
        if (r >= 0 && (bits < KEY_BITS || mru.prefixBits[r] !== KEY_BITS)) mru.noteSourceLocked(r, key, bits);
      }
      if (served) {
        reason = this.restrict(flags, client, bits, r, reason, buf, state);
        if (live.overloadEnabled && REASON_RESPONSE[reason] === RESPONSE_SERVED) {
          reason = this.admit(client, r, reason);
        }
      }
      if (r >= 0) mru.lastReason[r] = reason;
    } finally {
      mru.unlock();
    }
    if (REASON_RESPONSE[reason] === RESPONSE_SERVED) writeReplyAt(buf, this.time, state);
    return reason;
  }

  /**
   * A name rule denies this address (paper §10). A request we would otherwise serve, from an address whose
   * flags include `kod`, is told so by a DENY kiss-o'-death (access denied by the server), within the KoD
   * limiter's bounds; anything else is dropped. No MRU record: the address is refused before it is counted.
   */
  private nameDenied(flags: number, buf: Uint8Array, length: number, state: ServeState): number {
    const reason = decide(buf, length, state);
    if (REASON_RESPONSE[reason] !== RESPONSE_SERVED) return R_DROP_NAME_DENY;
    if (!this.live.kodEnabled || (flags & ACL_KOD) === 0) return R_DROP_NAME_DENY;
    this.kod.clock[0] = this.time[0]! / 1000;
    if (this.kod.decideNow(null, -1) !== KOD_SEND) return R_DROP_KOD_LIMITED_DENIED;
    writeKod(buf, KISS_DENY, state);
    return R_KISS_DENY;
  }

  /**
   * Overload control for a request about to be answered (paper §12): its class from its MRU record, its
   * pool from its client key (the source's prefix). Called under the MRU lock (the record's fields are read).
   */
  private admit(key: Uint32Array, r: number, reason: number): number {
    const mru = this.mru;
    let klass = CLASS_NEW;
    if (r >= 0 && mru.count[r]! > 1) {
      klass =
        mru.gapped[r] === 0 && mru.avgInterval[r]! >= this.live.mouseInterval ? CLASS_MOUSE : CLASS_KNOWN;
    }
    const ov = this.overload;
    ov.clock[0] = mru.clock[0]!; // seconds, set for the MRU touch; a typed-array copy boxes nothing
    // The pool is read only past the redline: below it (nearly always) the second hash of the key is saved.
    // A request that arrives in the very instant overload begins is pooled as 0, once.
    const pool = ov.overloaded ? hashKeyWords(key[0]!, key[1]!, key[2]!, key[3]!, ov.seed) : 0;
    return ov.admitNow(klass, pool) === OVERLOAD_WITHHOLD ? R_DROP_OVERLOAD : reason;
  }

  /**
   * noserve, call-gap, KoD for a request we would serve. `key` is the client (the source's prefix of `bits`
   * key bits). Called under the MRU lock.
   */
  private restrict(
    flags: number,
    key: Uint32Array,
    bits: number,
    r: number,
    reason: number,
    buf: Uint8Array,
    state: ServeState,
  ): number {
    const live = this.live;
    const kiss = live.kodEnabled && (flags & ACL_KOD) !== 0;
    if ((flags & ACL_NOSERVE) !== 0) {
      if (!kiss) return R_DROP_ACL_NOSERVE;
      if (this.kod.decideNow(this.mru, r) !== KOD_SEND) return R_DROP_KOD_LIMITED_DENIED;
      writeKod(buf, KISS_RSTR, state);
      return R_KISS_RSTR;
    }
    if (!live.callgapEnabled || (flags & ACL_LIMITED) === 0) return reason;
    const g = callGap(live.callgap, this.mru, r, this.rng);
    if (g === GAP_PASS_LEAK) return R_SERVED_LEAK;
    if (!isGapped(g)) return reason;
    if (!kiss) return R_DROP_GAPPED;
    if (this.kod.decideNow(this.mru, r) !== KOD_SEND) return R_DROP_KOD_LIMITED;
    writeKod(buf, KISS_RATE, state);
    if (live.blocklistEnabled && r >= 0 && this.mru.kods[r]! >= live.afterKods) {
      const nowMs = this.time[0]!;
      const expires = live.blockDurationMs > 0 ? nowMs + live.blockDurationMs : Number.POSITIVE_INFINITY;
      // The client is blocked: its prefix where it is shorter than the address (paper §11's "KoD address").
      this.blocklist.add(key, live.blockDurationMs > 0 ? expires : null, bits);
      this.queueBlock(key, expires, this.mru.kods[r]!, bits);
    }
    return R_KISS_RATE;
  }
}
