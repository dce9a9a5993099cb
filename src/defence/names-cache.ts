// The verdict cache of the reverse-DNS access lists (paper §10), the per-packet half of the pure code
// (docs/defences-names.md): a bounded cache of verdicts per address, the lookup limits, and a fixed queue
// of lookups for the shell (src/server/name-resolver.ts) to carry out. The rules and options it judges by
// are names-rules.ts. No I/O, no clock reads: time comes in as an argument, in Unix milliseconds.
//
// Per packet, NameGate.checkNow() looks the source address up in the cache. A fresh verdict (allow or deny)
// is returned at once. An address seen for the first time is marked pending and its key queued for a
// lookup, but only if the lookup budget allows: at most `maxConcurrent` lookups pending at once and
// `maxRate` new ones per second (a token bucket). A refused address stores nothing at all, so a flood of
// random sources can neither flood the resolver nor push known verdicts out of the cache faster than
// `maxRate` a second; it is asked again on its next packet. A verdict past its TTL is still returned while
// its refresh is pending (or refused), so a known client is never interrupted by its own refresh.
//
// The admission limits live here rather than in the shell for that reason: the shell only learns of a
// request once it has been queued, and by then the cache slot is taken.
//
// The cache is a hash table with chaining over typed arrays, evicting by CLOCK ("second chance"): a hit
// sets the entry's referenced bit (one byte written, where a recency list would rewrite three entries'
// links on every packet); when the cache is full, a hand sweeps the slots, clearing referenced bits and
// evicting the first entry found without one. An entry is inserted unreferenced, so an address that sent
// one packet (a forged source, most likely) goes before any that came back. Pending entries are never
// evicted (there are at most maxConcurrent of them, fewer than the capacity), so a settle always finds its
// entry and the count of pending lookups stays exact. 41 bytes an entry (key 16, expiry 8, state 1, chain
// and free list 8, buckets 8). checkNow() allocates nothing; drain() allocates one small array per lookup
// (rate-limited).
//
// One cache for all worker threads, in a SharedArrayBuffer under one lock (lock.ts, as the MRU list), not
// one per thread: SO_REUSEPORT spreads a client over the threads by its whole address and port, and a
// client that takes a new source port for each request (chrony's default, many SNTP clients) would
// otherwise be looked up, and held pending, once in every thread. Shared, an address is looked up once,
// the limits are the server's own (not divided between threads) and the counters are server-wide. The
// lookup queue is per thread: a lookup is carried out, and settled, by the thread whose packet queued it.

import { hashKey, hashKeyWords, KEY_WORDS } from "./address-key.ts";
import { DefenceError } from "./errors.ts";
import { acquireLock, releaseLock } from "./lock.ts";
import {
  compileNameOptions,
  NAME_ALLOW,
  NAME_DENY,
  NAME_MAX_CACHE,
  NAME_MAX_CONCURRENT,
  NAME_MIN_CACHE,
  type NameGateOptions,
  NameRules,
  nameCacheSize,
} from "./names-rules.ts";
import { randomU32 } from "./random.ts";

// Answers of the cache besides the rules' NAME_ALLOW and NAME_DENY (names-rules.ts).
/** No verdict yet: a lookup is pending or was refused by the limits; `dropPending` says what to do. */
export const NAME_PENDING = 3;
/** peek() only: the address is not in the cache. */
export const NAME_UNKNOWN = 0;

// Counters (Float64Array slots, so that counting allocates nothing).
export const NC_ALLOWED = 0; // check() returned NAME_ALLOW
export const NC_DENIED = 1; // check() returned NAME_DENY
export const NC_PENDING = 2; // check() returned NAME_PENDING
export const NC_QUEUED = 3; // lookups admitted and queued (first sight or refresh)
export const NC_REFUSED_RATE = 4; // a lookup was due but the rate limit (token bucket) refused it
export const NC_REFUSED_BUSY = 5; // a lookup was due but maxConcurrent lookups were already pending
export const NC_EVICTED = 6; // verdicts pushed out of a full cache
export const NC_STALE = 7; // an expired verdict returned while its refresh is pending or refused
export const NAME_COUNTER_COUNT = 8;
export const NAME_COUNTER_NAMES: readonly string[] = Object.freeze([
  "allowed",
  "denied",
  "pending",
  "queued",
  "refused_rate",
  "refused_busy",
  "evicted",
  "stale",
]);

// A slot's state byte: 0 = free; else the verdict (0 none yet, NAME_ALLOW, NAME_DENY) and these bits.
const VERDICT_MASK = 3;
const PENDING_BIT = 4;
const REF_BIT = 8;

// The shared buffer: the Int32 header, the Float64 words (bucket, counters), then the table.
const F_TOKENS = 0; // token bucket: tokens left
const F_LAST = 1; // time of the last refill, Unix ms
const F_RATE = 2; // tokens per ms
const F_SIZE = 3; // bucket size
const F_COUNTERS = 4; // NAME_COUNTER_COUNT counters
const F_WORDS = F_COUNTERS + NAME_COUNTER_COUNT;
const H_LOCK = 0; // the lock word (lock.ts)
const H_CAPACITY = 1;
const H_BUCKETS = 2; // bucket count, a power of two
const H_SEED = 3;
const H_USED = 4; // slots handed out so far (slots at and above it have never been used)
const H_FREE_TOP = 5;
const H_COUNT = 6; // entries in the table
const H_PENDING = 7; // pending lookups, all threads
const H_HAND = 8; // the CLOCK hand
const H_MAX_CONCURRENT = 9;
const H_RULES = 10; // hash of the rules the cached verdicts were made with
const H_WORDS = 16;

/** Bytes of the shared buffer of `capacity` entries: 33 each, plus 8 to 16 each for the hash buckets. */
export function nameGateBytes(capacity: number): number {
  const nb = bucketCount(capacity);
  return H_WORDS * 4 + F_WORDS * 8 + capacity * 8 + capacity * (KEY_WORDS * 4 + 4 + 4 + 1) + nb * 4;
}

function bucketCount(capacity: number): number {
  let nb = 1;
  while (nb < capacity * 2) nb <<= 1;
  return nb;
}

/**
 * The verdict cache and lookup limits in one SharedArrayBuffer that every worker thread attaches to (a
 * client whose packets the kernel spreads over several threads, as a client that changes its source port
 * is spread, is looked up once and judged alike everywhere), and this thread's own lookup queue.
 * Everything shared is read and written under one Atomics lock, like the MRU list's.
 */
export class NameGate {
  /** The shared cache; hand it to NameGate.attach in another thread. */
  readonly buffer: SharedArrayBuffer;
  /** Whether any rule is configured; when false the pipeline skips the gate and nothing is looked up. */
  active = false;
  /** What to do while pending: true = drop the packet, false = serve it. */
  dropPending = false;
  rules: NameRules;
  /** TTLs in ms, read by the shell when it settles. */
  ttlMs = 0;
  negativeTtlMs = 0;
  /** Entries the cache holds at most. */
  readonly capacity: number;
  /** Counters (NC_*), server-wide: they live in the shared buffer. */
  readonly counters: Float64Array;
  /** "now" for checkNow, Unix ms, written by the caller just before the call (per thread). */
  readonly clock = new Float64Array(1);

  private readonly f64: Float64Array;
  private readonly header: Int32Array;
  private readonly keys: Uint32Array;
  private readonly expires: Float64Array;
  private readonly chain: Int32Array; // next slot + 1 in the bucket's chain, 0 = end
  private readonly free: Int32Array;
  private readonly buckets: Int32Array; // first slot + 1, 0 = empty (so a new buffer needs no filling)
  private readonly state: Uint8Array;
  private readonly mask: number;
  private readonly seed: number;
  private rulesHash = 0;
  // This thread's lookups waiting for drain(), a ring of slots. Pending slots never move and only the thread
  // that queued one settles or releases it, so an index stays valid until drained.
  private readonly queue = new Int32Array(NAME_MAX_CONCURRENT);
  private queueHead = 0;
  private queueCount = 0;

  /** Use NameGate.create or NameGate.attach. */
  private constructor(buffer: SharedArrayBuffer, fresh: boolean, capacity: number, seed: number) {
    this.buffer = buffer;
    const nb = bucketCount(capacity);
    let o = 0;
    this.header = new Int32Array(buffer, o, H_WORDS);
    o += H_WORDS * 4;
    this.f64 = new Float64Array(buffer, o, F_WORDS);
    this.counters = new Float64Array(buffer, o + F_COUNTERS * 8, NAME_COUNTER_COUNT);
    o += F_WORDS * 8;
    this.expires = new Float64Array(buffer, o, capacity);
    o += capacity * 8;
    this.keys = new Uint32Array(buffer, o, capacity * KEY_WORDS);
    o += capacity * KEY_WORDS * 4;
    this.chain = new Int32Array(buffer, o, capacity);
    o += capacity * 4;
    this.free = new Int32Array(buffer, o, capacity);
    o += capacity * 4;
    this.buckets = new Int32Array(buffer, o, nb);
    o += nb * 4;
    this.state = new Uint8Array(buffer, o, capacity);
    this.mask = nb - 1;
    this.capacity = capacity;
    if (fresh) {
      const h = this.header;
      h[H_CAPACITY] = capacity;
      h[H_BUCKETS] = nb;
      h[H_SEED] = seed;
      this.f64[F_TOKENS] = -1; // "never configured": the first reconfigure fills the bucket
    }
    this.seed = this.header[H_SEED]!;
    this.rules = new NameRules([], "allow");
  }

  /**
   * A new gate with a new shared cache of `cacheSize` entries. The buffer is allocated whether or not any
   * rule is configured (so that rules added by a reload find it), but it is all zeros until used, and the
   * operating system gives an untouched page no memory.
   */
  static create(options: NameGateOptions = {}): NameGate {
    const cacheSize = nameCacheSize(options);
    const g = new NameGate(
      new SharedArrayBuffer(nameGateBytes(cacheSize)),
      true,
      cacheSize,
      options.seed ?? randomU32() | 0,
    );
    g.reconfigure(options);
    return g;
  }

  /** This thread's view of another thread's gate (its `buffer`), with this thread's options. */
  static attach(buffer: SharedArrayBuffer, options: NameGateOptions = {}): NameGate {
    const cap = buffer.byteLength >= H_WORDS * 4 ? new Int32Array(buffer, 0, H_WORDS)[H_CAPACITY]! : 0;
    if (cap < NAME_MIN_CACHE || cap > NAME_MAX_CACHE || buffer.byteLength !== nameGateBytes(cap)) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the buffer of a NameGate");
    }
    const g = new NameGate(buffer, false, cap, 0);
    g.reconfigure(options);
    return g;
  }

  /**
   * Applies new options (everything but the cache size and seed). Rules, default, pending action and TTLs
   * are this thread's; the limits are written to the shared buffer (every thread is given the same ones).
   * When the rules or the default change, cached verdicts are forgotten once for all threads (pending
   * lookups go on and are judged by the new rules).
   */
  reconfigure(options: NameGateOptions): void {
    const c = compileNameOptions(options);
    this.rules = c.rules;
    this.rulesHash = c.rulesHash;
    this.dropPending = c.dropPending;
    this.ttlMs = c.ttlMs;
    this.negativeTtlMs = c.negativeTtlMs;
    this.active = c.rules.length > 0;
    const size = Math.max(1, c.maxRate);
    const f = this.f64;
    const h = this.header;
    this.lock();
    try {
      h[H_MAX_CONCURRENT] = c.maxConcurrent;
      if (f[F_TOKENS]! < 0) {
        f[F_TOKENS] = size; // a new gate starts with a full bucket
        f[F_LAST] = Number.NEGATIVE_INFINITY;
      } else if (f[F_TOKENS]! > size) {
        f[F_TOKENS] = size;
      }
      f[F_RATE] = c.maxRate / 1000;
      f[F_SIZE] = size;
      if (h[H_RULES] !== this.rulesHash) {
        h[H_RULES] = this.rulesHash;
        this.forgetVerdictsLocked();
      }
    } finally {
      this.unlock();
    }
  }

  /** Entries in the cache (verdicts and pending lookups, all threads). */
  get size(): number {
    return Atomics.load(this.header, H_COUNT);
  }

  /** Lookups pending, all threads: queued, or in a shell's hands, not yet settled or released. */
  get pending(): number {
    return Atomics.load(this.header, H_PENDING);
  }

  get maxConcurrent(): number {
    return Atomics.load(this.header, H_MAX_CONCURRENT);
  }

  /** This thread's lookups waiting for drain(). */
  get queued(): number {
    return this.queueCount;
  }

  /** The verdict for a name confirmed by forward lookup, or for none (null), by this thread's rules. */
  verdictFor(name: string | null): number {
    return this.rules.verdict(name);
  }

  /** checkNow at `nowMs` (tests and tools; the hot path writes `clock` and calls checkNow). */
  check(key: Uint32Array, nowMs: number): number {
    this.clock[0] = nowMs;
    return this.checkNow(key);
  }

  /**
   * The per-packet call: NAME_ALLOW, NAME_DENY or NAME_PENDING for the address `key` at the time in
   * `this.clock[0]` (Unix ms; time travels in a typed array, never as a double argument, which V8 boxes
   * when it does not inline the callee). On first sight (or when a verdict has expired) queues a lookup
   * here if the limits allow. Takes the lock; allocation-free; call only when `active`.
   */
  checkNow(key: Uint32Array): number {
    this.lock();
    try {
      return this.checkLocked(key);
    } finally {
      this.unlock();
    }
  }

  private checkLocked(key: Uint32Array): number {
    const c = this.counters;
    const i = this.find(key);
    if (i >= 0) {
      const s = this.state[i]!;
      const v = s & VERDICT_MASK;
      if ((s & PENDING_BIT) !== 0) {
        if (v === 0) {
          c[NC_PENDING]!++;
          return NAME_PENDING;
        }
        c[NC_STALE]!++;
      } else if (this.expires[i]! <= this.clock[0]!) {
        // Expired: refresh, and keep answering with the old verdict meanwhile.
        if (this.admit()) {
          this.state[i] = s | PENDING_BIT;
          this.enqueue(i);
        }
        c[NC_STALE]!++;
      }
      if ((s & REF_BIT) === 0) this.state[i] = this.state[i]! | REF_BIT;
      c[v === NAME_ALLOW ? NC_ALLOWED : NC_DENIED]!++;
      return v;
    }
    c[NC_PENDING]!++;
    if (!this.admit()) return NAME_PENDING;
    const j = this.take();
    const o = j * KEY_WORDS;
    const keys = this.keys;
    keys[o] = key[0]!;
    keys[o + 1] = key[1]!;
    keys[o + 2] = key[2]!;
    keys[o + 3] = key[3]!;
    this.state[j] = PENDING_BIT;
    this.expires[j] = 0;
    const b = hashKey(key, this.seed) & this.mask;
    this.chain[j] = this.buckets[b]!;
    this.buckets[b] = j + 1;
    this.header[H_COUNT]!++;
    this.enqueue(j);
    return NAME_PENDING;
  }

  /** What the cache holds for `key`, without side effects: NAME_UNKNOWN, NAME_PENDING, NAME_ALLOW, NAME_DENY. */
  peek(key: Uint32Array): number {
    this.lock();
    try {
      const i = this.find(key);
      if (i < 0) return NAME_UNKNOWN;
      const s = this.state[i]!;
      return (s & PENDING_BIT) !== 0 ? NAME_PENDING : s & VERDICT_MASK;
    } finally {
      this.unlock();
    }
  }

  /** Hands every lookup this thread queued (a new key array each) to `fn`, in order, and empties the queue. */
  drain(fn: (key: Uint32Array) => void): void {
    while (this.queueCount > 0) {
      const i = this.queue[this.queueHead]!;
      this.queueHead = (this.queueHead + 1) % NAME_MAX_CONCURRENT;
      this.queueCount--;
      const key = new Uint32Array(KEY_WORDS);
      this.lock();
      key.set(this.keys.subarray(i * KEY_WORDS, i * KEY_WORDS + KEY_WORDS));
      this.unlock();
      fn(key);
    }
  }

  /**
   * Ends the pending lookup of `key` with `verdict` (NAME_ALLOW or NAME_DENY), kept for `ttlMs` from
   * `nowMs`. Returns false (and changes nothing) if `key` has no pending lookup.
   */
  settle(key: Uint32Array, verdict: number, ttlMs: number, nowMs: number): boolean {
    if (verdict !== NAME_ALLOW && verdict !== NAME_DENY) {
      throw new DefenceError("ERR_DEFENCE_OPTION", "a verdict is NAME_ALLOW or NAME_DENY");
    }
    this.lock();
    try {
      const i = this.find(key);
      if (i < 0 || (this.state[i]! & PENDING_BIT) === 0) return false;
      this.state[i] = verdict | (this.state[i]! & REF_BIT);
      this.expires[i] = nowMs + ttlMs;
      this.header[H_PENDING]!--;
      return true;
    } finally {
      this.unlock();
    }
  }

  /**
   * Gives up the pending lookup of `key` without a verdict (the shell is closing): an address that had
   * none is forgotten, one with an expired verdict keeps it (and will ask again). False if none pending.
   */
  release(key: Uint32Array): boolean {
    this.lock();
    try {
      const i = this.find(key);
      if (i < 0) return false;
      const s = this.state[i]!;
      if ((s & PENDING_BIT) === 0) return false;
      this.header[H_PENDING]!--;
      if ((s & VERDICT_MASK) === 0) this.remove(i);
      else this.state[i] = s & (VERDICT_MASK | REF_BIT);
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Forgets every verdict, all threads' (pending lookups stay, without their stale verdict). */
  forgetVerdicts(): void {
    this.lock();
    try {
      this.forgetVerdictsLocked();
    } finally {
      this.unlock();
    }
  }

  // --- internals ---------------------------------------------------------------------------------------

  private lock(): void {
    acquireLock(this.header, H_LOCK);
  }

  private unlock(): void {
    releaseLock(this.header, H_LOCK);
  }

  private forgetVerdictsLocked(): void {
    const used = this.header[H_USED]!;
    for (let i = 0; i < used; i++) {
      const s = this.state[i]!;
      if (s === 0) continue;
      if ((s & PENDING_BIT) === 0) this.remove(i);
      else this.state[i] = PENDING_BIT;
    }
  }

  /** Takes a lookup from the budget at the time in clock[0]: a pending slot and a token. */
  private admit(): boolean {
    const h = this.header;
    if (h[H_PENDING]! >= h[H_MAX_CONCURRENT]! || this.queueCount >= NAME_MAX_CONCURRENT) {
      this.counters[NC_REFUSED_BUSY]!++;
      return false;
    }
    const nowMs = this.clock[0]!;
    const f = this.f64;
    let tokens = f[F_TOKENS]!;
    const last = f[F_LAST]!;
    // A clock that steps back earns nothing, and restarts the count from the new time.
    if (nowMs > last) {
      tokens += (nowMs - last) * f[F_RATE]!;
      if (tokens > f[F_SIZE]!) tokens = f[F_SIZE]!;
    }
    f[F_LAST] = nowMs;
    if (tokens < 1) {
      f[F_TOKENS] = tokens;
      this.counters[NC_REFUSED_RATE]!++;
      return false;
    }
    f[F_TOKENS] = tokens - 1;
    h[H_PENDING]!++;
    this.counters[NC_QUEUED]!++;
    return true;
  }

  private enqueue(i: number): void {
    this.queue[(this.queueHead + this.queueCount) % NAME_MAX_CONCURRENT] = i;
    this.queueCount++;
  }

  private find(key: Uint32Array): number {
    const k0 = key[0]!;
    const k1 = key[1]!;
    const k2 = key[2]!;
    const k3 = key[3]!;
    const keys = this.keys;
    let i = this.buckets[hashKey(key, this.seed) & this.mask]! - 1;
    while (i >= 0) {
      const o = i * KEY_WORDS;
      if (keys[o] === k0 && keys[o + 1] === k1 && keys[o + 2] === k2 && keys[o + 3] === k3) return i;
      i = this.chain[i]! - 1;
    }
    return -1;
  }

  /**
   * A free slot: a released one, a never-used one, or the first one the CLOCK hand finds neither pending
   * nor referenced (clearing referenced bits as it passes). At most maxConcurrent (< capacity) entries are
   * pending, so one full turn clears every bit and the second finds a victim: bounded, and amortized O(1).
   */
  private take(): number {
    const h = this.header;
    if (h[H_FREE_TOP]! > 0) return this.free[--h[H_FREE_TOP]!]!;
    const used = h[H_USED]!;
    if (used < this.capacity) {
      h[H_USED] = used + 1;
      return used;
    }
    const state = this.state;
    let v = h[H_HAND]!;
    for (;;) {
      const s = state[v]!;
      if ((s & PENDING_BIT) === 0) {
        if ((s & REF_BIT) === 0) break;
        state[v] = s & ~REF_BIT;
      }
      if (++v === this.capacity) v = 0;
    }
    h[H_HAND] = v + 1 === this.capacity ? 0 : v + 1;
    this.remove(v);
    this.counters[NC_EVICTED]!++;
    return this.free[--h[H_FREE_TOP]!]!;
  }

  private remove(i: number): void {
    const o = i * KEY_WORDS;
    const k = this.keys;
    const b = hashKeyWords(k[o]!, k[o + 1]!, k[o + 2]!, k[o + 3]!, this.seed) & this.mask;
    let j = this.buckets[b]! - 1;
    if (j === i) this.buckets[b] = this.chain[i]!;
    else {
      while (this.chain[j]! - 1 !== i) j = this.chain[j]! - 1;
      this.chain[j] = this.chain[i]!;
    }
    this.state[i] = 0;
    const h = this.header;
    this.free[h[H_FREE_TOP]!++] = i;
    h[H_COUNT]!--;
  }
}
