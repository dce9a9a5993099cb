// The blocklist's in-memory half, on the hot path of every worker. Paper §11: "If the NTPv4 server is so
// configured, it keeps the KoD address of an offending client indefinitely and discards all further
// packets from that client." The durable half (SQLite) is src/server/blocklist/ and lives on the
// main thread only; each worker holds its own Blocklist and is kept in step by BlocklistUpdate messages.
//
// The set is an open-addressing table (linear probing, backward-shift deletion, load factor <= 1/2) keyed
// by 16-byte addresses held as four uint32 words and a prefix length. An entry is an address, or a prefix
// where the server knows clients by prefix (an automatic entry for an IPv6 /64, docs/defences-mru.md): a
// lookup probes once per prefix length held, longest first, usually one or two. Lookups allocate nothing. Slots are chosen by a keyed
// hash with a per-instance random key, because the addresses that reach the list are chosen by whoever
// draws the KoDs (spoofed sources included): with a fixed or weak hash an attacker could pile them into
// one probe chain and make every lookup slow.

import { CodedError } from "../base/errors.ts";
import {
  formatAddressKey,
  formatPrefixKey,
  KEY_BITS,
  maskKey,
  parseAddressKey,
  parsePrefixKey,
} from "./address-key.ts";

/**
 * A 16-byte address as four uint32 words in network order. IPv4 a.b.c.d is held as the IPv4-mapped IPv6
 * address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), so the same client has one key whether a dual-stack socket
 * reports it as "1.2.3.4" or "::ffff:1.2.3.4". The layout of src/defence/address-key.ts, whose
 * parseAddressKey turns rinfo.address into a key without allocating.
 */
export type AddressKey = Uint32Array;

export type BlocklistErrorCode = "ERR_BLOCKLIST_ADDRESS";

/** Thrown for text that is not a single IP address; `address` is the text as given. */
export class BlocklistError extends CodedError<BlocklistErrorCode> {
  readonly address: string;

  constructor(address: string, reason: string) {
    super("ERR_BLOCKLIST_ADDRESS", `${JSON.stringify(address)} ${reason}`);
    this.address = address;
  }
}

// --- Address text <-> key (configuration, CLI, store and messages; not the per-packet path) ---

const EXAMPLE = "write one IPv4 or IPv6 address, e.g. 192.0.2.1 or 2001:db8::1";

/**
 * Parses one IP address into its key, written into `out` (a new Uint32Array(4) when omitted). Accepts what
 * parseAddressKey accepts (the forms Node reports in rinfo.address), plus brackets around IPv6 and spaces
 * around the text. A "%zone" is dropped: the key has no room for it, and a blocked link-local address is
 * blocked on every link. Throws BlocklistError naming the text.
 */
export function keyFromAddress(text: string, out: AddressKey = new Uint32Array(4)): AddressKey {
  const s = String(text);
  let t = s.trim();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  if (parseAddressKey(t, out)) return out;
  if (t.includes("/"))
    throw new BlocklistError(
      s,
      `is a prefix; entries are added by address (${EXAMPLE}), prefixes only by the server itself`,
    );
  if (/^[0-9.]+$/.test(t)) {
    throw new BlocklistError(s, "is not a valid IPv4 address (four decimal numbers 0-255, no leading zeros)");
  }
  if (t.includes(":")) throw new BlocklistError(s, `is not a valid IPv6 address (${EXAMPLE})`);
  throw new BlocklistError(s, `is not an IP address (${EXAMPLE})`);
}

/** The canonical text of a key: dotted quad for IPv4, RFC 5952 §4 text for IPv6. */
export function addressFromKey(key: AddressKey): string {
  return formatAddressKey(key);
}

/** The canonical text of an address (what the store keeps). Throws BlocklistError naming the text. */
export function canonicalAddress(text: string): string {
  return addressFromKey(keyFromAddress(text));
}

/**
 * Parses an entry, an address or a prefix ("2001:db8:1:2::/64", "192.0.2.16/28": what an automatic entry
 * is where the server knows clients by prefix), into `out`; returns the prefix length in key bits (128 for
 * an address; an IPv4 /28 is 96 + 28). Throws BlocklistError naming the text.
 */
export function keyFromEntry(text: string, out: AddressKey = new Uint32Array(4)): number {
  const s = String(text);
  const t = s.trim();
  const slash = t.indexOf("/");
  if (slash < 0) {
    keyFromAddress(s, out);
    return KEY_BITS;
  }
  const bits = parsePrefixKey(t, out);
  if (bits >= 0) return bits;
  throw new BlocklistError(
    s,
    "is not an address or a prefix (a length 0-32 after IPv4, 0-128 after IPv6, no bits set beyond it)",
  );
}

/** The canonical text of an entry (address or prefix, see keyFromEntry). Throws BlocklistError. */
export function canonicalEntry(text: string): string {
  const key = new Uint32Array(4);
  const bits = keyFromEntry(text, key);
  return formatPrefixKey(key, bits);
}

// --- Keyed hash: HalfSipHash-1-3 over the four words (the shape of the Linux kernel's hsiphash) ---

/** The length block of a 16-byte message: its length in bytes in the top octet. */
const LENGTH_BLOCK = 16 << 24;

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

// --- The set ---

export interface BlocklistOptions {
  /** Most addresses held; adds beyond it are refused and counted. Default 1,000,000. */
  maxEntries?: number;
  /** Slots to start with (rounded up to a power of two); the table doubles as it fills. Default 256. */
  initialCapacity?: number;
}

/**
 * The live entries in compact form: 4 words, an expiry (ms, Infinity = for ever) and a prefix length in key
 * bits (128 = one address) per entry.
 */
export interface BlocklistSnapshot {
  words: Uint32Array;
  expiresMs: Float64Array;
  bits: Uint8Array;
}

/** One address or prefix and when it stops being blocked (null = for ever), as carried in messages. */
export interface BlocklistItem {
  /** Canonical text of an address, or of a prefix ("2001:db8:1:2::/64"). */
  address: string;
  expiresMs: number | null;
}

/**
 * Messages from the main thread (which owns the store) to every worker's Blocklist. Addresses travel as
 * canonical text, so a message is readable in a log; a whole list travels as a snapshot, whose typed
 * arrays copy (or transfer) cheaply.
 */
export type BlocklistUpdate =
  | { type: "blocklist-add"; items: BlocklistItem[] }
  | { type: "blocklist-remove"; addresses: string[] }
  | { type: "blocklist-replace"; snapshot: BlocklistSnapshot };

export interface BlocklistApplyResult {
  added: number;
  removed: number;
  /** Adds refused because the list was full. */
  refused: number;
  /** Addresses in the message that did not parse (skipped; the store never holds such text). */
  invalid: number;
}

const DEFAULT_MAX_ENTRIES = 1_000_000;
const MIN_CAPACITY = 16;

function pow2AtLeast(n: number): number {
  let c = MIN_CAPACITY;
  while (c < n) c *= 2;
  return c;
}

/** Checks a prefix length in key bits. */
function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 0 || bits > KEY_BITS)
    throw new RangeError(`bits must be an integer from 0 to ${KEY_BITS}, got ${bits}`);
}

/**
 * A bounded set of addresses and prefixes, each with an expiry. `has` is the per-packet check: no
 * allocation, expired entries count as absent. An address is an entry of 128 bits; keys and bits in the
 * methods below are those of src/defence/address-key.ts (an IPv4 /28 is 124 bits of the mapped key). Not
 * thread-safe and not shared: each worker owns one (see the module comment).
 */
export class Blocklist {
  readonly maxEntries: number;
  /** "now" for hasNow, in ms, written by the caller just before the call. */
  readonly clock = new Float64Array(1);
  #words: Uint32Array;
  #expires: Float64Array;
  /** Packets discarded per entry since the last drainHits. */
  #hits: Float64Array;
  #used: Uint8Array;
  /** Each slot's prefix length in key bits. */
  #bits: Uint8Array;
  #mask: number;
  /** Entries held per prefix length, and the lengths held, longest first (#lengthCount of them). */
  readonly #perLength = new Uint32Array(KEY_BITS + 1);
  readonly #lengths = new Uint8Array(KEY_BITS + 1);
  #lengthCount = 0;
  /** The probed key masked to a shorter length (lookups), or an added key masked (add). */
  readonly #scratch = new Uint32Array(4);
  /** The time #covering judges expiry at (ms): a typed-array cell, since a double argument would be boxed. */
  readonly #at = new Float64Array(1);
  #size = 0;
  #refused = 0;
  readonly #maxCapacity: number;
  // The hash key: fixed per instance, random, never shown. An Int32Array so that reads are untagged int32.
  readonly #hashKey = new Int32Array(2);

  constructor(options: BlocklistOptions = {}) {
    const max = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(max) || max < 1 || max > 1 << 26) {
      throw new RangeError(`maxEntries must be an integer from 1 to ${1 << 26}, got ${max}`);
    }
    this.maxEntries = max;
    // Load factor at most 1/2: most packets are *not* on the list, and a miss in linear probing costs
    // about (1 + 1/(1-a)^2)/2 probes: 2.5 at a = 1/2, 8.5 at 3/4.
    this.#maxCapacity = pow2AtLeast(2 * max);
    const cap = Math.min(pow2AtLeast(options.initialCapacity ?? 256), this.#maxCapacity);
    this.#words = new Uint32Array(cap * 4);
    this.#expires = new Float64Array(cap);
    this.#hits = new Float64Array(cap);
    this.#used = new Uint8Array(cap);
    this.#bits = new Uint8Array(cap);
    this.#mask = cap - 1;
    globalThis.crypto.getRandomValues(this.#hashKey);
  }

  /** Entries held (expired ones included until prune). */
  get size(): number {
    return this.#size;
  }

  /** Adds refused because the list was full, since construction. */
  get refused(): number {
    return this.#refused;
  }

  /** Slots allocated; memory is about 25 bytes a slot. */
  get capacity(): number {
    return this.#mask + 1;
  }

  // HalfSipHash-1-3 (the shape of the Linux kernel's hsiphash) of the key at a[o..o+4): one SipRound per
  // word, one for the length block, three to finish, written out in full.
  // Takes the array, not the words, and returns hash & mask, not the hash: uint32 values above 2^30 passed
  // to or returned from a call that V8 does not inline are boxed, i.e. allocated, on every lookup.
  // biome-ignore format: one SipRound per two lines reads better than forty lines of one statement
  #slot(a: Uint32Array, o: number, mask: number): number {
    const w0 = a[o]! | 0;
    const w1 = a[o + 1]! | 0;
    const w2 = a[o + 2]! | 0;
    const w3 = a[o + 3]! | 0;
    let v0 = this.#hashKey[0]!;
    let v1 = this.#hashKey[1]!;
    let v2 = 0x6c796765 ^ v0;
    let v3 = 0x74656462 ^ v1 ^ w0;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 ^= w0;
    v3 ^= w1;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 ^= w1;
    v3 ^= w2;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 ^= w2;
    v3 ^= w3;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 ^= w3;
    v3 ^= LENGTH_BLOCK;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 ^= LENGTH_BLOCK;
    v2 ^= 0xff;
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    v0 = (v0 + v1) | 0; v1 = rotl(v1, 5) ^ v0; v0 = rotl(v0, 16); v2 = (v2 + v3) | 0; v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0; v3 = rotl(v3, 7) ^ v0; v2 = (v2 + v1) | 0; v1 = rotl(v1, 13) ^ v2; v2 = rotl(v2, 16);
    return (v1 ^ v3) & mask;
  }

  /** The slot holding the entry of `bits` bits whose (masked) key is at a[o..o+4), or -1. */
  #find(a: Uint32Array, o: number, bits: number): number {
    const words = this.#words;
    const used = this.#used;
    const held = this.#bits;
    const mask = this.#mask;
    const w0 = a[o]!;
    const w1 = a[o + 1]!;
    const w2 = a[o + 2]!;
    const w3 = a[o + 3]!;
    let i = this.#slot(a, o, mask);
    while (used[i] !== 0) {
      const p = i << 2;
      if (
        words[p] === w0 &&
        words[p + 1] === w1 &&
        words[p + 2] === w2 &&
        words[p + 3] === w3 &&
        held[i] === bits
      )
        return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  /**
   * The slot of an entry covering the address `key` (the address itself, or a prefix of it) that is live
   * at `this.#at[0]` (ms), or -1. One probe per prefix length held, longest first.
   */
  #covering(key: AddressKey): number {
    const nowMs = this.#at[0]!;
    const lengths = this.#lengths;
    for (let j = 0; j < this.#lengthCount; j++) {
      const bits = lengths[j]!;
      let a = key;
      if (bits < KEY_BITS) {
        a = this.#scratch;
        maskKey(key, bits, a);
      }
      const i = this.#find(a, 0, bits);
      if (i >= 0 && nowMs < this.#expires[i]!) return i;
    }
    return -1;
  }

  /**
   * Whether packets from the address `key` are to be discarded at `nowMs` (ms, the receive time): it, or a
   * prefix of it, is held. No allocation.
   */
  has(key: AddressKey, nowMs: number): boolean {
    if (this.#size === 0) return false;
    this.#at[0] = nowMs;
    return this.#covering(key) >= 0;
  }

  /**
   * `has` at the time in `this.clock[0]` (ms): the hot path's form (no boxed double argument). A packet
   * found blocked is counted against its entry (see drainHits).
   */
  hasNow(key: AddressKey): boolean {
    if (this.#size === 0) return false;
    this.#at[0] = this.clock[0]!;
    const i = this.#covering(key);
    if (i < 0) return false;
    this.#hits[i]!++;
    return true;
  }

  /**
   * Calls `fn` with each entry's packets discarded by hasNow since the last drain (and its prefix length in
   * key bits), then zeroes the counts. The key array is reused between calls. Allocates one key array: for
   * the shell's periodic report.
   */
  drainHits(fn: (key: AddressKey, count: number, bits: number) => void): void {
    const key = new Uint32Array(4);
    const hits = this.#hits;
    for (let i = 0; i < hits.length; i++) {
      if (hits[i] === 0 || this.#used[i] === 0) continue;
      key.set(this.#words.subarray(i << 2, (i << 2) + 4));
      const n = hits[i]!;
      hits[i] = 0;
      fn(key, n, this.#bits[i]!);
    }
  }

  /**
   * When the entry `key` of `bits` bits (an address when omitted) stops being blocked (ms; Infinity = for
   * ever), or undefined if it is not held.
   */
  expiryOf(key: AddressKey, bits: number = KEY_BITS): number | undefined {
    checkBits(bits);
    maskKey(key, bits, this.#scratch);
    const i = this.#find(this.#scratch, 0, bits);
    return i >= 0 ? this.#expires[i] : undefined;
  }

  /**
   * Adds the entry `key` of `bits` bits (an address when omitted; bits beyond are ignored), or changes its
   * expiry when held: blocked until `expiresMs` (ms since the epoch; null or Infinity = for ever). Returns
   * false, and counts in `refused`, when the list is full.
   */
  add(key: AddressKey, expiresMs: number | null = null, bits: number = KEY_BITS): boolean {
    const exp = expiresMs === null ? Number.POSITIVE_INFINITY : expiresMs;
    if (Number.isNaN(exp)) throw new RangeError("expiresMs must be a number or null");
    checkBits(bits);
    key = this.#masked(key, bits);
    const at = this.#find(key, 0, bits);
    if (at >= 0) {
      this.#expires[at] = exp;
      return true;
    }
    if (this.#size >= this.maxEntries) {
      this.#refused++;
      return false;
    }
    if (2 * (this.#size + 1) > this.#mask + 1 && this.#mask + 1 < this.#maxCapacity) {
      this.#resize((this.#mask + 1) * 2);
    }
    this.#insert(key, 0, exp, bits);
    if (this.#perLength[bits]!++ === 0) this.#indexLengths();
    return true;
  }

  /** `key` masked to `bits` in the scratch key (the key itself for an address). */
  #masked(key: AddressKey, bits: number): AddressKey {
    if (bits >= KEY_BITS) return key;
    maskKey(key, bits, this.#scratch);
    return this.#scratch;
  }

  /** Lists the prefix lengths held, longest first (after a length comes or goes: rare). */
  #indexLengths(): void {
    let n = 0;
    for (let b = KEY_BITS; b >= 0; b--) if (this.#perLength[b]! > 0) this.#lengths[n++] = b;
    this.#lengthCount = n;
  }

  #insert(a: Uint32Array, o: number, exp: number, bits: number, hits = 0): void {
    const mask = this.#mask;
    let i = this.#slot(a, o, mask);
    while (this.#used[i] !== 0) i = (i + 1) & mask;
    this.#words.set(a.subarray(o, o + 4), i << 2);
    this.#expires[i] = exp;
    this.#hits[i] = hits;
    this.#bits[i] = bits;
    this.#used[i] = 1;
    this.#size++;
  }

  #resize(capacity: number): void {
    const words = this.#words;
    const expires = this.#expires;
    const hits = this.#hits;
    const used = this.#used;
    const bits = this.#bits;
    this.#words = new Uint32Array(capacity * 4);
    this.#expires = new Float64Array(capacity);
    this.#hits = new Float64Array(capacity);
    this.#used = new Uint8Array(capacity);
    this.#bits = new Uint8Array(capacity);
    this.#mask = capacity - 1;
    this.#size = 0;
    for (let i = 0; i < used.length; i++)
      if (used[i] !== 0) this.#insert(words, i << 2, expires[i]!, bits[i]!, hits[i]!);
  }

  /** Removes the entry `key` of `bits` bits (an address when omitted). Returns whether it was held. */
  remove(key: AddressKey, bits: number = KEY_BITS): boolean {
    checkBits(bits);
    const i = this.#find(this.#masked(key, bits), 0, bits);
    if (i < 0) return false;
    this.#deleteAt(i);
    return true;
  }

  // Backward-shift deletion: later members of the probe run move into the hole when their home slot
  // allows it, so no tombstones accumulate and misses stay short.
  #deleteAt(slot: number): void {
    const words = this.#words;
    const used = this.#used;
    const mask = this.#mask;
    const gone = this.#bits[slot]!;
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      if (used[j] === 0) break;
      const o = j << 2;
      const home = this.#slot(words, o, mask);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (inRange) continue;
      const h = hole << 2;
      words[h] = words[o]!;
      words[h + 1] = words[o + 1]!;
      words[h + 2] = words[o + 2]!;
      words[h + 3] = words[o + 3]!;
      this.#expires[hole] = this.#expires[j]!;
      this.#hits[hole] = this.#hits[j]!;
      this.#bits[hole] = this.#bits[j]!;
      hole = j;
    }
    used[hole] = 0;
    this.#size--;
    if (--this.#perLength[gone]! === 0) this.#indexLengths();
  }

  /** Removes every entry whose expiry is at or before `nowMs`. Returns how many. */
  prune(nowMs: number): number {
    let n = 0;
    for (let i = 0; i < this.#used.length; i++) if (this.#used[i] !== 0 && !(nowMs < this.#expires[i]!)) n++;
    if (n === 0) return 0;
    // Collect first: deleting while scanning could shift a later entry into a slot already passed.
    const victims = new Uint32Array(n * 4);
    const victimBits = new Uint8Array(n);
    let k = 0;
    for (let i = 0; i < this.#used.length; i++) {
      if (this.#used[i] === 0 || nowMs < this.#expires[i]!) continue;
      victims.set(this.#words.subarray(i << 2, (i << 2) + 4), k << 2);
      victimBits[k] = this.#bits[i]!;
      k++;
    }
    for (let v = 0; v < n; v++) this.remove(victims.subarray(v << 2, (v << 2) + 4), victimBits[v]!);
    return n;
  }

  /** Removes everything (capacity is kept). */
  clear(): void {
    this.#used.fill(0);
    this.#hits.fill(0);
    this.#size = 0;
    this.#perLength.fill(0);
    this.#lengthCount = 0;
  }

  /**
   * Calls `fn` for every entry held, with its prefix length in key bits (128: an address); the key array is
   * reused between calls (copy it to keep it).
   */
  forEach(fn: (key: AddressKey, expiresMs: number, bits: number) => void): void {
    const key = new Uint32Array(4);
    for (let i = 0; i < this.#used.length; i++) {
      if (this.#used[i] === 0) continue;
      key.set(this.#words.subarray(i << 2, (i << 2) + 4));
      fn(key, this.#expires[i]!, this.#bits[i]!);
    }
  }

  /** The entries not yet expired at `nowMs` (all when omitted), compacted, for a worker's first load. */
  snapshot(nowMs: number = Number.NEGATIVE_INFINITY): BlocklistSnapshot {
    let n = 0;
    for (let i = 0; i < this.#used.length; i++) if (this.#used[i] !== 0 && nowMs < this.#expires[i]!) n++;
    const words = new Uint32Array(n * 4);
    const expiresMs = new Float64Array(n);
    const bits = new Uint8Array(n);
    let k = 0;
    for (let i = 0; i < this.#used.length; i++) {
      if (this.#used[i] === 0 || !(nowMs < this.#expires[i]!)) continue;
      words.set(this.#words.subarray(i << 2, (i << 2) + 4), k << 2);
      bits[k] = this.#bits[i]!;
      expiresMs[k++] = this.#expires[i]!;
    }
    return { words, expiresMs, bits };
  }

  /** Replaces the contents with a snapshot's. Returns how many entries were refused for lack of room. */
  load(snapshot: BlocklistSnapshot): number {
    const n = snapshot.expiresMs.length;
    if (snapshot.words.length !== n * 4 || snapshot.bits.length !== n)
      throw new RangeError("snapshot words, expiries and prefix lengths differ in length");
    this.clear();
    const before = this.#refused;
    for (let i = 0; i < n; i++)
      this.add(snapshot.words.subarray(i * 4, i * 4 + 4), snapshot.expiresMs[i]!, snapshot.bits[i]!);
    return this.#refused - before;
  }

  /** Applies a message from the main thread; see BlocklistUpdate. */
  apply(update: BlocklistUpdate): BlocklistApplyResult {
    const r: BlocklistApplyResult = { added: 0, removed: 0, refused: 0, invalid: 0 };
    const key = new Uint32Array(4);
    switch (update.type) {
      case "blocklist-add":
        for (const item of update.items) {
          const bits = tryKey(item.address, key);
          if (bits < 0) r.invalid++;
          else if (this.add(key, item.expiresMs, bits)) r.added++;
          else r.refused++;
        }
        break;
      case "blocklist-remove":
        for (const address of update.addresses) {
          const bits = tryKey(address, key);
          if (bits < 0) r.invalid++;
          else if (this.remove(key, bits)) r.removed++;
        }
        break;
      case "blocklist-replace":
        r.refused = this.load(update.snapshot);
        r.added = this.#size;
        break;
    }
    return r;
  }
}

/** The entry's prefix length in key bits, its key in `out`; -1 if the text is not an address or prefix. */
function tryKey(address: string, out: AddressKey): number {
  try {
    return keyFromEntry(address, out);
  } catch {
    return -1;
  }
}

/** A snapshot of items (e.g. the store's entries at start), without building a Blocklist. */
export function snapshotOf(items: readonly BlocklistItem[]): BlocklistSnapshot {
  const words = new Uint32Array(items.length * 4);
  const expiresMs = new Float64Array(items.length);
  const bits = new Uint8Array(items.length);
  const key = new Uint32Array(4);
  let k = 0;
  for (const item of items) {
    const b = tryKey(item.address, key);
    if (b < 0) continue;
    words.set(key, k * 4);
    bits[k] = b;
    expiresMs[k++] = item.expiresMs ?? Number.POSITIVE_INFINITY;
  }
  return { words: words.slice(0, k * 4), expiresMs: expiresMs.slice(0, k), bits: bits.slice(0, k) };
}
