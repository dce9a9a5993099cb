// The kiss-o'-death limiter (paper §11): decides whether a request the server will not serve (gapped by the
// call-gap, denied by an access list) gets a KoD packet or is silently dropped. "A determined clogger could
// create the same overload as if the server responded in the ordinary way. For this reason the KoD packet
// rate is limited to a safe value and the excess thrown away." Two limits:
//
// - Per client: at most one KoD per `clientInterval` seconds (default 5, the call-gap's `average`), kept in
//   the client's MRU record (lastKod). One KoD is enough to tell a client to slow down; more only feed a
//   flood that spoofs it.
// - In all: at most `maxRate` KoDs per second (token bucket of `burst` KoDs, default one second's worth).
//   This is the bound that stops the server from becoming a reflector for a spoofed flood from random
//   addresses, each of which is "new" and passes the per-client limit.
//
// The global bucket lives in its own small SharedArrayBuffer, shared by all worker threads, under its own
// lock word. A per-thread share (maxRate / threads) would need no lock, but the kernel spreads clients over
// threads by a hash of the source, so one hot thread would exhaust its share while the others' went unused
// and the server's KoD rate would depend on how the flood hashed. The lock is taken only for requests that
// reached the KoD decision (never for served ones), and held for a handful of arithmetic operations. It is
// always taken after the MRU lock, never before, so the two cannot deadlock.
//
// Pure: the time comes in as an argument (seconds); nothing is allocated.

import { DefenceError } from "./errors.ts";
import { acquireLock, releaseLock } from "./lock.ts";
import { MRU_FLAG_KOD, type MruList } from "./mru.ts";

/** Options of the KoD limiter. */
export interface KodLimiterOptions {
  /** Seconds between KoDs to one client (default 5, the call-gap's `average`). */
  clientInterval?: number;
  /** KoDs per second, all clients together (default 100; 0 = never send a KoD). */
  maxRate?: number;
  /** Bucket size: most KoDs sent back to back (default max(1, maxRate)). */
  burst?: number;
}

export const KOD_DEFAULTS = Object.freeze({ clientInterval: 5, maxRate: 100 });

/** Send the KoD. */
export const KOD_SEND = 0;
/** Dropped: this client had a KoD less than clientInterval ago. */
export const KOD_DROP_CLIENT = 1;
/** Dropped: the server-wide KoD rate is used up. */
export const KOD_DROP_RATE = 2;

export const KOD_RESULT_NAMES: readonly string[] = Object.freeze([
  "kod_send",
  "kod_drop_client",
  "kod_drop_rate",
]);

export interface KodStats {
  sent: number;
  droppedClient: number;
  droppedRate: number;
}

// Layout: Int32 [lock, magic] then Float64 slots.
const I_LOCK = 0;
const I_MAGIC = 1;
const F_TOKENS = 1;
const F_LAST = 2;
const F_RATE = 3;
const F_BURST = 4;
const F_CLIENT_INTERVAL = 5;
const F_SENT = 6;
const F_DROPPED_CLIENT = 7;
const F_DROPPED_RATE = 8;
const SLOTS = 9;
const BYTES = SLOTS * 8;
const MAGIC = 0x4b4f4431; // "KOD1"

function bad(message: string): never {
  throw new DefenceError("ERR_DEFENCE_OPTION", message);
}

export class KodLimiter {
  readonly buffer: SharedArrayBuffer;
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  /** This view's "now" for decideNow, in seconds (per thread, not shared). */
  readonly clock = new Float64Array(1);

  /** Use KodLimiter.create or KodLimiter.attach. */
  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.i32 = new Int32Array(buffer, 0, 2);
    this.f64 = new Float64Array(buffer, 0, SLOTS);
  }

  static create(options: KodLimiterOptions = {}): KodLimiter {
    const clientInterval = options.clientInterval ?? KOD_DEFAULTS.clientInterval;
    const maxRate = options.maxRate ?? KOD_DEFAULTS.maxRate;
    const burst = options.burst ?? Math.max(1, maxRate);
    if (!(clientInterval >= 0 && Number.isFinite(clientInterval))) bad("clientInterval must be seconds >= 0");
    if (!(maxRate >= 0 && Number.isFinite(maxRate))) bad("maxRate must be a number of KoDs per second >= 0");
    if (!(burst >= 1 && Number.isFinite(burst))) bad("burst must be a number >= 1");
    const buffer = new SharedArrayBuffer(BYTES);
    const f = new Float64Array(buffer);
    new Int32Array(buffer, 0, 2)[I_MAGIC] = MAGIC;
    f[F_TOKENS] = burst;
    f[F_LAST] = Number.NEGATIVE_INFINITY;
    f[F_RATE] = maxRate;
    f[F_BURST] = burst;
    f[F_CLIENT_INTERVAL] = clientInterval;
    return new KodLimiter(buffer);
  }

  /** A view of a limiter made in another thread. */
  static attach(buffer: SharedArrayBuffer): KodLimiter {
    if (
      !(buffer instanceof SharedArrayBuffer) ||
      buffer.byteLength !== BYTES ||
      new Int32Array(buffer, 0, 2)[I_MAGIC] !== MAGIC
    ) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the shared buffer of a KoD limiter");
    }
    return new KodLimiter(buffer);
  }

  /** Seconds between KoDs to one client. */
  get clientInterval(): number {
    return this.f64[F_CLIENT_INTERVAL]!;
  }

  /** KoDs per second, all threads together. */
  get maxRate(): number {
    return this.f64[F_RATE]!;
  }

  get burst(): number {
    return this.f64[F_BURST]!;
  }

  /**
   * Changes the limits in place (a configuration reload), for every thread attached to the same buffer.
   * Tokens already in the bucket are capped at the new burst. Takes the lock.
   */
  setLimits(options: KodLimiterOptions): void {
    const clientInterval = options.clientInterval ?? this.clientInterval;
    const maxRate = options.maxRate ?? this.maxRate;
    const burst = options.burst ?? Math.max(1, maxRate);
    if (!(clientInterval >= 0 && Number.isFinite(clientInterval))) bad("clientInterval must be seconds >= 0");
    if (!(maxRate >= 0 && Number.isFinite(maxRate))) bad("maxRate must be a number of KoDs per second >= 0");
    if (!(burst >= 1 && Number.isFinite(burst))) bad("burst must be a number >= 1");
    this.lock();
    const f = this.f64;
    f[F_CLIENT_INTERVAL] = clientInterval;
    f[F_RATE] = maxRate;
    f[F_BURST] = burst;
    f[F_TOKENS] = Math.min(f[F_TOKENS]!, burst);
    this.unlock();
  }

  /**
   * Whether to send a KoD to the client of MRU record `r` (-1 if it has none: only the global limit then
   * applies) at time `now` (seconds). On KOD_SEND, marks the record (lastKod, kods, MRU_FLAG_KOD). The
   * caller holds the MRU lock when r >= 0. Allocation-free.
   */
  decide(mru: MruList | null, r: number, now: number): number {
    this.clock[0] = now;
    return this.decideNow(mru, r);
  }

  /** decide at the time in `this.clock[0]` (seconds): the hot path's form (no boxed double argument). */
  decideNow(mru: MruList | null, r: number): number {
    const now = this.clock[0]!;
    const f = this.f64;
    if (mru !== null && r >= 0 && now - mru.lastKod[r]! < f[F_CLIENT_INTERVAL]!) {
      this.lock();
      f[F_DROPPED_CLIENT]!++;
      this.unlock();
      return KOD_DROP_CLIENT;
    }
    let sent = false;
    this.lock();
    const elapsed = now - f[F_LAST]!;
    if (elapsed > 0) {
      // Refill; a time older than the last one (another thread's clock) just adds nothing.
      const tokens =
        f[F_TOKENS]! + (elapsed === Number.POSITIVE_INFINITY ? f[F_BURST]! : elapsed * f[F_RATE]!);
      f[F_TOKENS] = Math.min(tokens, f[F_BURST]!);
      f[F_LAST] = now;
    }
    if (f[F_RATE]! > 0 && f[F_TOKENS]! >= 1) {
      f[F_TOKENS]! -= 1;
      f[F_SENT]!++;
      sent = true;
    } else {
      f[F_DROPPED_RATE]!++;
    }
    this.unlock();
    if (!sent) return KOD_DROP_RATE;
    if (mru !== null && r >= 0) {
      mru.lastKod[r] = now;
      const k = mru.kods[r]!;
      if (k !== 0xffffffff) mru.kods[r] = k + 1;
      mru.flags[r]! |= MRU_FLAG_KOD;
    }
    return KOD_SEND;
  }

  stats(): KodStats {
    this.lock();
    const f = this.f64;
    const s = { sent: f[F_SENT]!, droppedClient: f[F_DROPPED_CLIENT]!, droppedRate: f[F_DROPPED_RATE]! };
    this.unlock();
    return s;
  }

  // The shared lock (lock.ts): the section is a few loads and stores, so a brief spin, then sleep.
  private lock(): void {
    acquireLock(this.i32, I_LOCK);
  }

  private unlock(): void {
    releaseLock(this.i32, I_LOCK);
  }
}
