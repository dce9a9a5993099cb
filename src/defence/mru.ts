// The most-recently-used list of clients (paper §5): one record per client (its address, or the prefix the
// caller keys it by: docs/defences-mru.md, "A client is its prefix"), kept in order of last use from newest
// to oldest, bounded in entries and in bytes. It is how the server finds the elephants, and it holds the
// per-client state the call-gap (§12) and the kiss-o'-death limiter (§11) need.
//
// Layout. Every record lives in typed arrays over ONE SharedArrayBuffer (structure of arrays: one array per
// field), so that all worker threads of the server see the same records: with SO_REUSEPORT or a
// round-robin balancer a client's packets can land on any thread, and a per-thread list would split its
// history and blind the call-gap, the very failure §12 describes for the NIST/USNO balancers. Records are
// found through a hash table of chains by index (buckets -> first record, chain[] -> next record), and kept
// in recency order by a doubly linked list by index (prev[]/next[]). Touching a record is O(1): find it,
// update it, move it to the front. Nothing is allocated per packet.
//
// When the list is full, a newcomer needs the oldest record. If that record has not been seen for more than
// maxAge seconds it is recycled. Otherwise the newcomer is admitted with probability admitProbability
// (evicting the oldest record anyway) and refused otherwise: the paper's "probabilistic basis", which makes
// the list under pressure a random sample of arrivals rather than a record of the latest N, and lets the
// operator trade coverage of new clients against keeping the history of the clients already tracked.
//
// Concurrency: one lock word at the start of the buffer (lock.ts), taken around each O(1) update. Striped
// locks would not help: every touch moves a record to the head of the one recency list, so every update
// writes the shared head (and, when full, the tail) whatever stripe its record is in. The critical section
// is a hash probe and a few stores (~100 ns), short enough for lock.ts's brief spin before it sleeps. The
// per-record fields used by call-gap and KoD are read and written under the same lock, in the same critical
// section as the touch, so that a client's concurrent packets on two threads are decided one after the
// other.

import {
  formatAddressKey,
  formatPrefixKey,
  hashKeyWords,
  KEY_BITS,
  KEY_WORDS,
  prefixLengthOf,
} from "./address-key.ts";
import { DefenceError } from "./errors.ts";
import { acquireLock, releaseLock } from "./lock.ts";
import { createRng, RNG_RANGE, type Rng, randomU32 } from "./random.ts";

/** Options of the MRU list. Time is in seconds throughout. */
export interface MruOptions {
  /** Most records kept. */
  maxEntries?: number;
  /** Most bytes the whole shared buffer may take (records, hash table, header). */
  maxMemory?: number;
  /** A full list recycles its oldest record if it was last seen more than this many seconds ago. */
  maxAge?: number;
  /** Otherwise a newcomer is admitted with this probability (evicting the oldest record) and refused else. */
  admitProbability?: number;
  /** k in avgInterval += (interval - avgInterval) / 2^k: the average's memory is about 2^k intervals. */
  averageShift?: number;
  /** Seed of the key hash; random unless given (tests). */
  hashSeed?: number;
  /** Protection from a flood of newcomers: see MruList#setProtection. Default: none. */
  protection?: MruProtection;
}

/**
 * Which records a flood of newcomers may not push out (overload control, MISSION part 10). A mouse (an
 * averaged interval of at least `mouseInterval` seconds, at least two packets, never gapped) that has been
 * silent for at most `intervals` of its own averaged intervals, and at most `maxSilence` seconds, is given a
 * second chance when it reaches the tail of a full list: moved to the front instead of recycled or evicted,
 * whatever maxAge says. Without it a flood of new sources cycles the whole list in seconds, and the mice,
 * whose history is what overload control ranks by, are the first records lost. `intervals` 0 = off.
 */
export interface MruProtection {
  mouseInterval: number;
  intervals: number;
  maxSilence: number;
}

/** Defaults: ~11.2 MB of shared memory for 100,000 records (see docs/defences-mru.md). */
export const MRU_DEFAULTS = Object.freeze({
  maxEntries: 100_000,
  maxMemory: 64 * 1024 * 1024,
  maxAge: 64,
  admitProbability: 0.5,
  averageShift: 3,
});

/** Most records one list may hold: indices stay well inside Int32, the bucket count inside 2^31. */
export const MRU_MAX_ENTRIES = 1 << 28;

// Flags in MruList.flags (bits 0-7 are set by the defence modules here; 8-31 are free for the access
// lists' restriction flags, so an operator sees in one mask what was applied to a client).
/** The call-gap gapped at least one request (ntpq's "limited"). */
export const MRU_FLAG_LIMITED = 1 << 0;
/** At least one kiss-o'-death was sent. */
export const MRU_FLAG_KOD = 1 << 1;

// Header: 32 Int32 words = 128 bytes; Float64 slots 8-15 overlay bytes 64-127.
const HEADER_BYTES = 128;
const H_LOCK = 0;
const H_MAGIC = 1;
const H_LAYOUT = 2;
const H_CAPACITY = 3;
const H_BUCKETS = 4;
const H_USED = 5;
const H_HEAD = 6;
const H_TAIL = 7;
const H_SEED = 8;
const H_SHIFT = 9;
const F_MAX_AGE = 8;
const F_ADMIT = 9; // admitProbability * RNG_RANGE, compared with a draw
const F_INSERTED = 10;
const F_HITS = 11;
const F_RECYCLED = 12;
const F_EVICTED = 13;
const F_REFUSED = 14;
// Protection of established records (overload control, docs/defences-overload.md): Float64 slots 5-7 lie
// over Int32 words 10-15, which the Int32 fields above leave free; slot 15 counts the second chances given.
const F_MOUSE = 5;
const F_PROTECT_K = 6;
const F_PROTECT_MAX = 7;
const F_PROTECTED = 15;
/** Protected records a newcomer may pass over at the tail before it is refused: keeps a touch O(1). */
const PROTECT_SCAN = 4;
const MAGIC = 0x4d525531; // "MRU1"
const LAYOUT_VERSION = 4; // 2: the call-gap's `fast` byte; 3: protection settings; 4: source and prefix

const NIL = -1;
const U32_MAX = 0xffffffff;

/** Bytes of one record's fields (the hash table's buckets come on top: 4 bytes x next power of two). */
export const MRU_RECORD_BYTES =
  5 * 8 + // firstSeen, lastSeen, avgInterval, credit, lastKod: Float64
  KEY_WORDS * 4 + // key
  KEY_WORDS * 4 + // source: the last address seen
  4 * 4 + // count, gapped, kods, flags: Uint32
  3 * 4 + // prev, next, chain: Int32
  2 + // port: Uint16
  5; // mode, version, lastReason, fast, prefixBits: Uint8

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Bytes of the shared buffer of a list with room for `capacity` records. */
export function mruBufferBytes(capacity: number): number {
  const raw = HEADER_BYTES + capacity * MRU_RECORD_BYTES + 4 * nextPow2(capacity);
  return Math.ceil(raw / 8) * 8;
}

/** The capacity the options give: min(maxEntries, the most records whose buffer fits in maxMemory). */
export function mruCapacity(maxEntries: number, maxMemory: number): number {
  let lo = 0;
  let hi = Math.min(maxEntries, MRU_MAX_ENTRIES);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (mruBufferBytes(mid) <= maxMemory) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Counters of the list as a whole. */
export interface MruStats {
  capacity: number;
  size: number;
  bufferBytes: number;
  /** Records created in free room. */
  inserted: number;
  /** Packets from a client already in the list. */
  hits: number;
  /** Oldest records reused because older than maxAge. */
  recycled: number;
  /** Oldest records evicted, though younger than maxAge, for a newcomer admitted by sampling. */
  evicted: number;
  /** Newcomers refused by sampling, or because the tail held only protected records (no record). */
  refused: number;
  /** Second chances: protected records moved from the tail to the front instead of being replaced. */
  protected: number;
}

/** One record as plain data, for monitoring. */
export interface MruEntry {
  index: number;
  /** The client: its address, or "prefix/length" when it is keyed by a prefix shorter than the address. */
  address: string;
  /** The last source address seen (the address itself when the client is keyed by its whole address). */
  lastAddress: string;
  /** The prefix length the client is keyed by, as written after the address (32 or 128: the whole address). */
  prefixLength: number;
  firstSeen: number;
  lastSeen: number;
  count: number;
  /** Exponentially averaged interval in seconds; 0 until the second packet. */
  avgInterval: number;
  mode: number;
  version: number;
  port: number;
  flags: number;
  gapped: number;
  kods: number;
  /** When the last KoD was sent (-Infinity if never). */
  lastKod: number;
  /** What the server last did with this client (a reason code of the decision core). */
  lastReason: number;
  /** The call-gap's credit (start-up allowance or tokens). */
  credit: number;
  /** The call-gap's fast allowance as stored (callgap.ts: bits 0-6 requests left, bit 7 inside a burst). */
  fast: number;
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new DefenceError("ERR_DEFENCE_OPTION", message);
}

/**
 * The MRU list over a SharedArrayBuffer. Create it once (`MruList.create`), pass `buffer` to the workers
 * and `MruList.attach` it there. Methods whose names end in `Locked` must be called between lock() and
 * unlock(); the others take the lock themselves. Record fields are public typed arrays indexed by record:
 * read and write them only under the lock.
 */
export class MruList {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  /**
   * Set by touchLocked: seconds since this record's previous packet (0 if time ran backwards), Infinity
   * for a record just created, NaN if the newcomer was refused. Per view (per thread), so read it right
   * after the touch, under the same lock.
   */
  interval = Number.NaN;
  /** This view's "now" for touchNowLocked, in seconds: written by the caller just before the call. */
  readonly clock = new Float64Array(1);

  readonly firstSeen: Float64Array;
  readonly lastSeen: Float64Array;
  readonly avgInterval: Float64Array;
  /** Owned by the call-gap (callgap.ts): start-up allowance or token-bucket tokens. */
  readonly credit: Float64Array;
  /** Owned by the KoD limiter (kod-limiter.ts): when the last KoD was sent. */
  readonly lastKod: Float64Array;
  /** KEY_WORDS words per record: the client, i.e. its source masked to `prefixBits` (docs/defences-mru.md). */
  readonly keys: Uint32Array;
  /** KEY_WORDS words per record: the last source address seen, for displays and ntpq (addr.N). */
  readonly sources: Uint32Array;
  /** Packets seen; saturates at 2^32-1, as do gapped and kods. */
  readonly count: Uint32Array;
  readonly gapped: Uint32Array;
  readonly kods: Uint32Array;
  readonly flags: Uint32Array;
  readonly port: Uint16Array;
  readonly mode: Uint8Array;
  readonly version: Uint8Array;
  readonly lastReason: Uint8Array;
  /** Owned by the call-gap (callgap.ts): the fast (measurement burst) allowance. */
  readonly fast: Uint8Array;
  /** The prefix length the record is keyed by, in key bits (KEY_BITS = the whole address; IPv4 /28 = 124). */
  readonly prefixBits: Uint8Array;

  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly chain: Int32Array;
  private readonly buckets: Int32Array;
  private readonly header: Int32Array;
  private readonly headerF: Float64Array;
  private readonly mask: number;
  private readonly seed: number;
  private readonly weight: number;
  private readonly maxAge: number;
  private readonly admit: number;
  private readonly rng: Rng;

  /** Use MruList.create or MruList.attach. */
  private constructor(buffer: SharedArrayBuffer, rng: Rng) {
    const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const capacity = header[H_CAPACITY]!;
    const nBuckets = header[H_BUCKETS]!;
    if (
      header[H_MAGIC] !== MAGIC ||
      header[H_LAYOUT] !== LAYOUT_VERSION ||
      capacity < 1 ||
      nBuckets !== nextPow2(capacity) ||
      buffer.byteLength !== mruBufferBytes(capacity)
    ) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the shared buffer of an MRU list");
    }
    this.buffer = buffer;
    this.capacity = capacity;
    this.header = header;
    this.headerF = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    this.mask = nBuckets - 1;
    this.seed = header[H_SEED]!;
    this.weight = 1 / 2 ** header[H_SHIFT]!;
    this.maxAge = this.headerF[F_MAX_AGE]!;
    this.admit = this.headerF[F_ADMIT]!;
    this.rng = rng;
    // Widest elements first, so every array is aligned to its element size.
    let off = HEADER_BYTES;
    const f64 = () => {
      const a = new Float64Array(buffer, off, capacity);
      off += capacity * 8;
      return a;
    };
    const u32 = (n: number) => {
      const a = new Uint32Array(buffer, off, n);
      off += n * 4;
      return a;
    };
    const i32 = (n: number) => {
      const a = new Int32Array(buffer, off, n);
      off += n * 4;
      return a;
    };
    this.firstSeen = f64();
    this.lastSeen = f64();
    this.avgInterval = f64();
    this.credit = f64();
    this.lastKod = f64();
    this.keys = u32(capacity * KEY_WORDS);
    this.sources = u32(capacity * KEY_WORDS);
    this.count = u32(capacity);
    this.gapped = u32(capacity);
    this.kods = u32(capacity);
    this.flags = u32(capacity);
    this.prev = i32(capacity);
    this.next = i32(capacity);
    this.chain = i32(capacity);
    this.buckets = i32(nBuckets);
    this.port = new Uint16Array(buffer, off, capacity);
    off += capacity * 2;
    this.mode = new Uint8Array(buffer, off, capacity);
    off += capacity;
    this.version = new Uint8Array(buffer, off, capacity);
    off += capacity;
    this.lastReason = new Uint8Array(buffer, off, capacity);
    off += capacity;
    this.fast = new Uint8Array(buffer, off, capacity);
    off += capacity;
    this.prefixBits = new Uint8Array(buffer, off, capacity);
  }

  /** Makes a new, empty list. `rng` draws the admission samples (default: createRng()). */
  static create(options: MruOptions = {}, rng?: Rng): MruList {
    const o = { ...MRU_DEFAULTS, ...stripUndefined(options) };
    check(Number.isInteger(o.maxEntries) && o.maxEntries >= 1, "maxEntries must be a positive integer");
    check(o.maxEntries <= MRU_MAX_ENTRIES, `maxEntries must be at most ${MRU_MAX_ENTRIES}`);
    check(Number.isFinite(o.maxMemory) && o.maxMemory > 0, "maxMemory must be a positive number of bytes");
    check(o.maxAge >= 0 && !Number.isNaN(o.maxAge), "maxAge must be a number of seconds >= 0");
    check(
      o.admitProbability >= 0 && o.admitProbability <= 1,
      "admitProbability must be a number from 0 to 1",
    );
    check(
      Number.isInteger(o.averageShift) && o.averageShift >= 0 && o.averageShift <= 16,
      "averageShift must be an integer from 0 to 16",
    );
    const capacity = mruCapacity(o.maxEntries, o.maxMemory);
    check(capacity >= 1, `maxMemory ${o.maxMemory} is too small for even one record`);
    const buffer = new SharedArrayBuffer(mruBufferBytes(capacity));
    const header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    const headerF = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    header[H_MAGIC] = MAGIC;
    header[H_LAYOUT] = LAYOUT_VERSION;
    header[H_CAPACITY] = capacity;
    header[H_BUCKETS] = nextPow2(capacity);
    header[H_SEED] = options.hashSeed ?? randomU32();
    header[H_SHIFT] = o.averageShift;
    headerF[F_MAX_AGE] = o.maxAge;
    headerF[F_ADMIT] = o.admitProbability * RNG_RANGE;
    const list = new MruList(buffer, rng ?? createRng());
    list.reset();
    list.setProtection(options.protection);
    return list;
  }

  /** A view of a list made in another thread (the buffer came by workerData or postMessage). */
  static attach(buffer: SharedArrayBuffer, rng?: Rng): MruList {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new DefenceError("ERR_DEFENCE_BUFFER", "not the shared buffer of an MRU list");
    }
    return new MruList(buffer, rng ?? createRng());
  }

  /** Takes the list's lock (spins briefly, then sleeps). Not reentrant. */
  lock(): void {
    acquireLock(this.header, H_LOCK);
  }

  /** Releases the lock. */
  unlock(): void {
    releaseLock(this.header, H_LOCK);
  }

  /** Records in use. */
  get size(): number {
    return Atomics.load(this.header, H_USED);
  }

  /**
   * Records a packet from `key` at time `now` (seconds) and returns its record index, or -1 if the list is
   * full and the newcomer was refused. Sets `this.interval`. Caller holds the lock. O(1), allocation-free.
   */
  touchLocked(key: Uint32Array, now: number, mode: number, version: number, port: number): number {
    this.clock[0] = now;
    return this.touchNowLocked(key, mode, version, port);
  }

  /**
   * touchLocked at the time in `this.clock[0]` (seconds). The hot path's form: a double passed as an argument
   * to a function V8 does not inline is boxed (a heap allocation per call); one read from a typed array is
   * not. Caller holds the lock.
   */
  touchNowLocked(key: Uint32Array, mode: number, version: number, port: number): number {
    const now = this.clock[0]!;
    const k0 = key[0]!;
    const k1 = key[1]!;
    const k2 = key[2]!;
    const k3 = key[3]!;
    const h = this.header;
    const bucket = hashKeyWords(k0, k1, k2, k3, this.seed) & this.mask;
    let r = this.find(bucket, k0, k1, k2, k3);
    if (r !== NIL) {
      let dt = now - this.lastSeen[r]!;
      // Threads' clocks (or a simulator) may hand times slightly out of order: never move lastSeen back.
      if (dt < 0) dt = 0;
      else this.lastSeen[r] = now;
      const c = this.count[r]!;
      // The first interval seeds the average; after that it moves 1/2^k of the way to each new interval.
      if (c === 1) this.avgInterval[r] = dt;
      else this.avgInterval[r]! += (dt - this.avgInterval[r]!) * this.weight;
      if (c !== U32_MAX) this.count[r] = c + 1;
      this.mode[r] = mode;
      this.version[r] = version;
      this.port[r] = port;
      this.moveToFront(r);
      this.headerF[F_HITS]!++;
      this.interval = dt;
      return r;
    }
    const used = h[H_USED]!;
    if (used < this.capacity) {
      r = used;
      h[H_USED] = used + 1;
      this.headerF[F_INSERTED]!++;
    } else {
      r = h[H_TAIL]!;
      const headerF = this.headerF;
      if (headerF[F_PROTECT_K]! > 0) {
        for (let i = 0; i < PROTECT_SCAN && this.isProtected(r, now); i++) {
          this.moveToFront(r);
          headerF[F_PROTECTED]!++;
          r = h[H_TAIL]!;
        }
        if (this.isProtected(r, now)) {
          headerF[F_REFUSED]!++;
          this.interval = Number.NaN;
          return NIL;
        }
      }
      if (now - this.lastSeen[r]! > this.maxAge) {
        this.headerF[F_RECYCLED]!++;
      } else if (this.rng() < this.admit) {
        this.headerF[F_EVICTED]!++;
      } else {
        this.headerF[F_REFUSED]!++;
        this.interval = Number.NaN;
        return NIL;
      }
      this.unlinkHash(r);
      this.unlinkList(r);
    }
    const kw = r * KEY_WORDS;
    this.keys[kw] = k0;
    this.keys[kw + 1] = k1;
    this.keys[kw + 2] = k2;
    this.keys[kw + 3] = k3;
    // Keyed by the whole address unless the caller says otherwise (noteSourceLocked).
    this.sources[kw] = k0;
    this.sources[kw + 1] = k1;
    this.sources[kw + 2] = k2;
    this.sources[kw + 3] = k3;
    this.prefixBits[r] = KEY_BITS;
    this.firstSeen[r] = now;
    this.lastSeen[r] = now;
    this.avgInterval[r] = 0;
    this.credit[r] = 0;
    this.fast[r] = 0;
    this.lastKod[r] = Number.NEGATIVE_INFINITY;
    this.count[r] = 1;
    this.gapped[r] = 0;
    this.kods[r] = 0;
    this.flags[r] = 0;
    this.mode[r] = mode;
    this.version[r] = version;
    this.port[r] = port;
    this.lastReason[r] = 0;
    this.chain[r] = this.buckets[bucket]!;
    this.buckets[bucket] = r;
    this.pushFront(r);
    this.interval = Number.POSITIVE_INFINITY;
    return r;
  }

  /**
   * Records that record r, keyed by a prefix of `bits` key bits, was just touched by a packet from
   * `source` (the whole address): displays and ntpq show the prefix and the last address. Call right after
   * the touch that returned r, under the same lock. Allocates nothing.
   */
  noteSourceLocked(r: number, source: Uint32Array, bits: number): void {
    const kw = r * KEY_WORDS;
    this.sources[kw] = source[0]!;
    this.sources[kw + 1] = source[1]!;
    this.sources[kw + 2] = source[2]!;
    this.sources[kw + 3] = source[3]!;
    this.prefixBits[r] = bits;
  }

  /** touchLocked under the lock, for callers that do nothing else with the record. */
  touch(key: Uint32Array, now: number, mode: number, version: number, port: number): number {
    this.lock();
    try {
      return this.touchLocked(key, now, mode, version, port);
    } finally {
      this.unlock();
    }
  }

  /** The record index of `key`, or -1. Does not change the order. Caller holds the lock. */
  lookupLocked(key: Uint32Array): number {
    const k0 = key[0]!;
    const k1 = key[1]!;
    const k2 = key[2]!;
    const k3 = key[3]!;
    return this.find(hashKeyWords(k0, k1, k2, k3, this.seed) & this.mask, k0, k1, k2, k3);
  }

  // Read-only steps along the recency list, for monitoring walks that must start at a given record or run
  // from the oldest end (ntpq's mrulist, src/control/mrulist.ts). Each returns a record index or -1 (none).
  // Caller holds the lock; indices are meaningful only while it is held.

  /** The most recently used record, or -1 if the list is empty. Caller holds the lock. */
  newestLocked(): number {
    return this.header[H_HEAD]!;
  }

  /** The least recently used record, or -1 if the list is empty. Caller holds the lock. */
  oldestLocked(): number {
    return this.header[H_TAIL]!;
  }

  /** The record used just after record r (one step toward the newest), or -1. Caller holds the lock. */
  newerLocked(r: number): number {
    return this.prev[r]!;
  }

  /** The record used just before record r (one step toward the oldest), or -1. Caller holds the lock. */
  olderLocked(r: number): number {
    return this.next[r]!;
  }

  /** lookupLocked under the lock. The index may be recycled as soon as the lock is released. */
  lookup(key: Uint32Array): number {
    this.lock();
    try {
      return this.lookupLocked(key);
    } finally {
      this.unlock();
    }
  }

  /** The record at `index` as plain data, or undefined if unused. Takes the lock; allocates. */
  read(index: number): MruEntry | undefined {
    this.lock();
    try {
      return index >= 0 && index < this.header[H_USED]! ? this.entryLocked(index) : undefined;
    } finally {
      this.unlock();
    }
  }

  /** Whether record r is an established mouse that a newcomer may not replace now (see MruProtection). */
  private isProtected(r: number, now: number): boolean {
    const f = this.headerF;
    const avg = this.avgInterval[r]!;
    if (avg < f[F_MOUSE]! || this.count[r]! < 2 || this.gapped[r]! !== 0) return false;
    let limit = avg * f[F_PROTECT_K]!;
    const max = f[F_PROTECT_MAX]!;
    if (limit > max) limit = max;
    return now - this.lastSeen[r]! <= limit;
  }

  /** Sets (or, with intervals 0, turns off) the protection of established records. Shared by every view. */
  setProtection(p: MruProtection | undefined): void {
    const f = this.headerF;
    if (p === undefined || !(p.intervals > 0)) {
      f[F_PROTECT_K] = 0;
      return;
    }
    check(
      p.mouseInterval > 0 && Number.isFinite(p.mouseInterval),
      "mouseInterval must be a number of seconds > 0",
    );
    check(Number.isFinite(p.intervals), "protection intervals must be a finite number");
    check(p.maxSilence >= 0 && !Number.isNaN(p.maxSilence), "maxSilence must be a number of seconds >= 0");
    f[F_MOUSE] = p.mouseInterval;
    f[F_PROTECT_MAX] = p.maxSilence;
    f[F_PROTECT_K] = p.intervals;
  }

  /** Counters of the list. Takes the lock; allocates. */
  stats(): MruStats {
    this.lock();
    try {
      const f = this.headerF;
      return {
        capacity: this.capacity,
        size: this.header[H_USED]!,
        bufferBytes: this.buffer.byteLength,
        inserted: f[F_INSERTED]!,
        hits: f[F_HITS]!,
        recycled: f[F_RECYCLED]!,
        evicted: f[F_EVICTED]!,
        refused: f[F_REFUSED]!,
        protected: f[F_PROTECTED]!,
      };
    } finally {
      this.unlock();
    }
  }

  /** Empties the list and zeroes its counters. Takes the lock. */
  clear(): void {
    this.lock();
    try {
      this.reset();
    } finally {
      this.unlock();
    }
  }

  private reset(): void {
    const h = this.header;
    h[H_USED] = 0;
    h[H_HEAD] = NIL;
    h[H_TAIL] = NIL;
    this.buckets.fill(NIL);
    for (let f = F_INSERTED; f <= F_REFUSED; f++) this.headerF[f] = 0;
    this.headerF[F_PROTECTED] = 0;
  }

  /**
   * The records from newest to oldest, for monitoring: off the hot path, allocates. The lock is taken for
   * `chunk` records at a time and never held while the caller runs, so the workers wait at most one chunk.
   * The walk is not an atomic snapshot: a record touched meanwhile moves to the front, and the walk then
   * resumes from the front, skipping records already reported. Each record is reported at most once, and
   * each record untouched throughout the walk exactly once, unless churn is so heavy that the walk uses up
   * its bound of about four passes over the list and stops early.
   */
  *entries(chunk = 1024): Generator<MruEntry> {
    const reported = new Uint8Array(this.capacity);
    let budget = 4 * this.capacity + 4 * chunk;
    let cursor = NIL;
    const stampKey = new Uint32Array(KEY_WORDS);
    let stampSeen = 0;
    let started = false;
    while (budget > 0) {
      const out: MruEntry[] = [];
      this.lock();
      try {
        if (!started) {
          cursor = this.header[H_HEAD]!;
          started = true;
        } else if (cursor !== NIL && !this.sameRecord(cursor, stampKey, stampSeen)) {
          // The next record to report was touched or recycled since the last chunk: its successors are
          // lost to us, but every record we have not reported is still reachable from the front.
          cursor = this.header[H_HEAD]!;
        }
        let steps = 0;
        while (cursor !== NIL && out.length < chunk && steps < 4 * chunk) {
          steps++;
          if (reported[cursor] === 0) {
            reported[cursor] = 1;
            out.push(this.entryLocked(cursor));
          }
          cursor = this.next[cursor]!;
        }
        budget -= steps;
        if (cursor !== NIL) {
          for (let w = 0; w < KEY_WORDS; w++) stampKey[w] = this.keys[cursor * KEY_WORDS + w]!;
          stampSeen = this.lastSeen[cursor]!;
        }
      } finally {
        this.unlock();
      }
      yield* out;
      if (cursor === NIL) return;
    }
  }

  /** All records newest to oldest (see entries). */
  snapshot(limit = Number.POSITIVE_INFINITY): MruEntry[] {
    const out: MruEntry[] = [];
    if (limit <= 0) return out;
    for (const e of this.entries()) {
      out.push(e);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Checks the list's invariants (for tests): returns a description of the first violation, or "". */
  checkInvariants(): string {
    this.lock();
    try {
      const used = this.header[H_USED]!;
      let n = 0;
      let prev = NIL;
      for (let r = this.header[H_HEAD]!; r !== NIL; r = this.next[r]!) {
        if (++n > used) return "forward walk longer than size (cycle?)";
        if (this.prev[r] !== prev) return `prev[${r}] is ${this.prev[r]}, expected ${prev}`;
        const k = r * KEY_WORDS;
        const keyArr = this.keys.subarray(k, k + KEY_WORDS);
        if (this.lookupLocked(keyArr) !== r) return `record ${r} is not found by its key`;
        prev = r;
      }
      if (n !== used) return `forward walk found ${n} records, size is ${used}`;
      if (this.header[H_TAIL] !== prev) return "tail is not the last record";
      let chained = 0;
      for (let b = 0; b <= this.mask; b++) {
        for (let r = this.buckets[b]!; r !== NIL; r = this.chain[r]!) {
          if (++chained > used) return "hash chains longer than size (cycle?)";
        }
      }
      if (chained !== used) return `hash chains hold ${chained} records, size is ${used}`;
      return "";
    } finally {
      this.unlock();
    }
  }

  private sameRecord(r: number, key: Uint32Array, seen: number): boolean {
    const k = r * KEY_WORDS;
    return (
      this.keys[k] === key[0] &&
      this.keys[k + 1] === key[1] &&
      this.keys[k + 2] === key[2] &&
      this.keys[k + 3] === key[3] &&
      this.lastSeen[r] === seen
    );
  }

  private entryLocked(r: number): MruEntry {
    const kw = r * KEY_WORDS;
    const bits = this.prefixBits[r]!;
    return {
      index: r,
      address: formatPrefixKey(this.keys, bits, kw),
      lastAddress: formatAddressKey(this.sources, kw),
      prefixLength: prefixLengthOf(this.keys, bits, kw),
      firstSeen: this.firstSeen[r]!,
      lastSeen: this.lastSeen[r]!,
      count: this.count[r]!,
      avgInterval: this.avgInterval[r]!,
      mode: this.mode[r]!,
      version: this.version[r]!,
      port: this.port[r]!,
      flags: this.flags[r]!,
      gapped: this.gapped[r]!,
      kods: this.kods[r]!,
      lastKod: this.lastKod[r]!,
      lastReason: this.lastReason[r]!,
      credit: this.credit[r]!,
      fast: this.fast[r]!,
    };
  }

  private find(bucket: number, k0: number, k1: number, k2: number, k3: number): number {
    const keys = this.keys;
    for (let r = this.buckets[bucket]!; r !== NIL; r = this.chain[r]!) {
      const k = r * KEY_WORDS;
      if (keys[k] === k0 && keys[k + 1] === k1 && keys[k + 2] === k2 && keys[k + 3] === k3) return r;
    }
    return NIL;
  }

  private unlinkHash(r: number): void {
    const k = r * KEY_WORDS;
    const keys = this.keys;
    const bucket = hashKeyWords(keys[k]!, keys[k + 1]!, keys[k + 2]!, keys[k + 3]!, this.seed) & this.mask;
    let p = this.buckets[bucket]!;
    if (p === r) {
      this.buckets[bucket] = this.chain[r]!;
      return;
    }
    while (p !== NIL) {
      const q = this.chain[p]!;
      if (q === r) {
        this.chain[p] = this.chain[r]!;
        return;
      }
      p = q;
    }
  }

  private unlinkList(r: number): void {
    const p = this.prev[r]!;
    const n = this.next[r]!;
    if (p === NIL) this.header[H_HEAD] = n;
    else this.next[p] = n;
    if (n === NIL) this.header[H_TAIL] = p;
    else this.prev[n] = p;
  }

  private pushFront(r: number): void {
    const h = this.header;
    const head = h[H_HEAD]!;
    this.prev[r] = NIL;
    this.next[r] = head;
    if (head === NIL) h[H_TAIL] = r;
    else this.prev[head] = r;
    h[H_HEAD] = r;
  }

  private moveToFront(r: number): void {
    if (this.header[H_HEAD] === r) return;
    this.unlinkList(r);
    this.pushFront(r);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
