// Client addresses as fixed 16-byte keys, so that per-client state (the MRU list, §5) can live in typed
// arrays with no strings on the hot path.
//
// A key is four 32-bit words, the address's 128 bits in network order. IPv4 a.b.c.d is stored as the
// IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2): a dual-stack socket reports an IPv4 client
// in that form, a v4 socket in dotted-quad form, and both must land on the same record.
//
// Parsing reads the string with charCodeAt and writes into the caller's scratch array: nothing is allocated
// per packet. Formatting back to text is for displays and allocates.

/** Words in a key. */
export const KEY_WORDS = 4;

/** Word 2 of an IPv4-mapped key (the 0xffff in ::ffff:a.b.c.d). */
const MAPPED = 0xffff;

// Parse scratch for the eight 16-bit groups of an IPv6 address: allocated once per thread, reused.
const groups = new Uint16Array(8);

/**
 * Parses strict dotted-quad IPv4 in s[start..end) (four decimal parts 0-255, no leading zeros, as
 * node:net's isIPv4) into groups[at] and groups[at + 1]. Returns false if it is not one. (It hands the
 * address back through the scratch array, not as a return value: a 32-bit number above the small-integer
 * range would be boxed, an allocation per packet.)
 */
function parseIPv4At(s: string, start: number, end: number, at: number): boolean {
  let high = 0;
  let low = 0;
  let parts = 0;
  let i = start;
  while (true) {
    let part = 0;
    let digits = 0;
    let leadingZero = false;
    while (i < end) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      if (digits === 0 && c === 48) leadingZero = true;
      else if (leadingZero) return false; // "01": inet_aton would read octal; Node rejects it, so do we
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return false;
      i++;
    }
    if (digits === 0) return false;
    if (parts < 2) high = (high << 8) | part;
    else low = (low << 8) | part;
    parts++;
    if (parts === 4) {
      if (i !== end) return false;
      groups[at] = high;
      groups[at + 1] = low;
      return true;
    }
    if (i >= end || s.charCodeAt(i) !== 46 /* . */) return false;
    i++;
  }
}

/** Value of a hex digit, or -1. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Whether c may appear in a zone id (the set node:net's isIPv6 accepts). */
function isZoneChar(c: number): boolean {
  return (
    (c >= 48 && c <= 58) /* 0-9 and : */ ||
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    c === 45 /* - */ ||
    c === 46 /* . */
  );
}

/** Parses IPv6 text (RFC 4291 §2.2, with an optional trailing dotted quad) in s[0..end) into `groups`. */
function parseIPv6Groups(s: string, end: number): boolean {
  let g = 0; // groups written
  let gap = -1; // group index where "::" stands
  let i = 0;
  if (end < 2) return false;
  if (s.charCodeAt(0) === 58 /* : */) {
    if (s.charCodeAt(1) !== 58) return false; // a lone leading colon
    gap = 0;
    i = 2;
    if (i === end) {
      groups.fill(0);
      return true;
    }
  }
  while (true) {
    const groupStart = i;
    let value = 0;
    let digits = 0;
    while (i < end) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      if (++digits > 4) return false;
      value = value * 16 + h;
      i++;
    }
    if (i < end && s.charCodeAt(i) === 46 /* . */) {
      // A trailing dotted quad stands for the last two groups (RFC 4291 §2.2 form 3).
      if (g > 6) return false;
      if (!parseIPv4At(s, groupStart, end, g)) return false;
      g += 2;
      break;
    }
    if (digits === 0 || g === 8) return false;
    groups[g++] = value;
    if (i === end) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false; // "::" at most once
      gap = g;
      i++;
      if (i === end) break;
    } else if (i === end) {
      return false; // a lone trailing colon
    }
  }
  if (gap < 0) return g === 8;
  if (g > 7) return false; // "::" stands for at least one group
  // Move the groups after "::" to the end and zero the run it stands for.
  const shift = 8 - g;
  for (let j = g - 1; j >= gap; j--) groups[j + shift] = groups[j]!;
  for (let j = gap; j < gap + shift; j++) groups[j] = 0;
  return true;
}

/**
 * Writes the key of `address` (Node's `rinfo.address`: "a.b.c.d" or IPv6 text, possibly "::ffff:a.b.c.d"
 * or with a "%zone", which is ignored) into out[0..4). Returns false, leaving `out` unspecified, if the text
 * is not an IP address; node:net.isIP accepts exactly the same strings. Allocates nothing.
 */
export function parseAddressKey(address: string, out: Uint32Array): boolean {
  const n = address.length;
  let end = n;
  let colon = false;
  for (let i = 0; i < n; i++) {
    const c = address.charCodeAt(i);
    if (c === 58) colon = true;
    else if (c === 37 /* % */) {
      // A zone id only follows IPv6 text, and is not part of the address (link-local scope).
      if (!colon || i === n - 1) return false;
      for (let j = i + 1; j < n; j++) if (!isZoneChar(address.charCodeAt(j))) return false;
      end = i;
      break;
    }
  }
  if (!colon) {
    if (!parseIPv4At(address, 0, n, 6)) return false;
    out[0] = 0;
    out[1] = 0;
    out[2] = MAPPED;
    out[3] = (groups[6]! << 16) | groups[7]!;
    return true;
  }
  if (!parseIPv6Groups(address, end)) return false;
  out[0] = (groups[0]! << 16) | groups[1]!;
  out[1] = (groups[2]! << 16) | groups[3]!;
  out[2] = (groups[4]! << 16) | groups[5]!;
  out[3] = (groups[6]! << 16) | groups[7]!;
  return true;
}

/** Whether the key at key[offset..offset+4) is an IPv4 address (IPv4-mapped form). */
export function isIPv4Key(key: ArrayLike<number>, offset = 0): boolean {
  return key[offset] === 0 && key[offset + 1] === 0 && key[offset + 2] === MAPPED;
}

/**
 * Keeps the first `prefixLength` bits of an IPv6 key and zeroes the rest (IPv4 keys are left alone). One
 * IPv6 host commonly owns a whole /64, and could otherwise dodge per-address call-gap by rotating its
 * source address; keying on the prefix makes the /64 one client. In place, allocates nothing.
 */
export function maskIPv6Key(key: Uint32Array, prefixLength: number): void {
  if (isIPv4Key(key) || prefixLength >= 128) return;
  for (let w = 0; w < KEY_WORDS; w++) {
    const keep = prefixLength - w * 32;
    if (keep <= 0) key[w] = 0;
    else if (keep < 32) key[w] = key[w]! & ~(0xffffffff >>> keep);
  }
}

/** Bits in a key; a prefix length in key bits runs 0..KEY_BITS (an IPv4 /n is 96 + n, inside ::ffff:0:0/96). */
export const KEY_BITS = 128;

/**
 * Writes the first `bits` bits of `key` into `out` and zeroes the rest (`out` may be `key`). Per-client
 * state is keyed by the source's prefix where addresses are cheap (an IPv6 host owns its /64 and picks a new
 * address in it at will, docs/defences-mru.md): this makes that key once per packet. Allocates nothing.
 */
export function maskKey(key: Uint32Array, bits: number, out: Uint32Array): void {
  for (let w = 0; w < KEY_WORDS; w++) {
    const keep = bits - w * 32;
    if (keep >= 32) out[w] = key[w]!;
    else if (keep <= 0) out[w] = 0;
    else out[w] = key[w]! & ~(0xffffffff >>> keep);
  }
}

/**
 * The prefix length, in key bits, by which a client at `key` is known: 96 + `ipv4Prefix` for an IPv4
 * (IPv4-mapped) address, `ipv6Prefix` for any other. A mapped address always takes the IPv4 length: it is
 * one IPv4 host however the socket reported it.
 */
export function clientPrefixBits(key: ArrayLike<number>, ipv4Prefix: number, ipv6Prefix: number): number {
  return isIPv4Key(key) ? 96 + ipv4Prefix : ipv6Prefix;
}

/**
 * A prefix length in key bits as the operator writes it after the address: an IPv4 /28 is 124 bits of its
 * mapped key and shows as 28; an IPv6 /64 is 64.
 */
export function prefixLengthOf(key: ArrayLike<number>, bits: number, offset = 0): number {
  return isIPv4Key(key, offset) && bits >= 96 ? bits - 96 : bits;
}

/**
 * The display text of a client key and its prefix length in key bits: the address alone when the prefix
 * is the whole address (bits 128), "address/length" otherwise ("2001:db8:1:2::/64", "192.0.2.16/28").
 * Allocates; not for the hot path.
 */
export function formatPrefixKey(key: ArrayLike<number>, bits: number, offset = 0): string {
  const text = formatAddressKey(key, offset);
  return bits >= KEY_BITS ? text : `${text}/${prefixLengthOf(key, bits, offset)}`;
}

/**
 * Parses an address or a prefix ("192.0.2.16/28", "2001:db8:1:2::/64"; IPv4 text takes a length 0-32,
 * IPv6 text 0-128) into `out`, masked. Returns the prefix length in key bits (128 for an address, or for a
 * prefix as long as its address), or -1 if the text is neither, or if bits are set beyond the length (not
 * a prefix's canonical text, which is what displays and stores write). Allocates; for tools and stores.
 */
export function parsePrefixKey(text: string, out: Uint32Array): number {
  const slash = text.indexOf("/");
  if (slash < 0) return parseAddressKey(text, out) ? KEY_BITS : -1;
  const address = text.slice(0, slash);
  const length = text.slice(slash + 1);
  if (address.includes("%") || !parseAddressKey(address, out)) return -1;
  const v4 = !address.includes(":");
  if (!/^(?:0|[1-9][0-9]{0,2})$/.test(length) || Number(length) > (v4 ? 32 : 128)) return -1;
  const bits = (v4 ? 96 : 0) + Number(length);
  const masked = new Uint32Array(KEY_WORDS);
  maskKey(out, bits, masked);
  for (let w = 0; w < KEY_WORDS; w++) if (masked[w] !== out[w]) return -1;
  return bits;
}

/**
 * A seeded 30-bit hash of a key's four words, for the MRU's hash table. Thirty bits so that the result is
 * always a small integer (Smi) in V8: returning a larger number from a call would box it, an allocation per
 * packet, and no table here has more than 2^28 buckets. The seed is chosen at random when
 * the table is made, so a flood of spoofed sources cannot be picked in advance to fall into one chain.
 * (Not cryptographic: it makes collisions unpredictable enough for a bounded table, no more.)
 */
export function hashKeyWords(w0: number, w1: number, w2: number, w3: number, seed: number): number {
  let h = seed ^ 0x5bd1e995;
  h = Math.imul(h ^ w0, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h ^ w1, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h ^ w2, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h ^ w3, 0x9e3779b1);
  // Final avalanche so the low bits (the bucket index) depend on every input bit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & 0x3fffffff;
}

/** hashKeyWords over key[0..4). */
export function hashKey(key: Uint32Array, seed: number): number {
  return hashKeyWords(key[0]!, key[1]!, key[2]!, key[3]!, seed);
}

/**
 * The display text of the key at key[offset..offset+4): dotted quad for IPv4 (mapped) keys, RFC 5952
 * canonical text otherwise (lower case, no leading zeros, the longest run of two or more zero groups, the
 * first if tied, shortened to "::"). Allocates; not for the hot path.
 */
export function formatAddressKey(key: ArrayLike<number>, offset = 0): string {
  const w3 = key[offset + 3]! >>> 0;
  if (isIPv4Key(key, offset)) {
    return `${w3 >>> 24}.${(w3 >>> 16) & 0xff}.${(w3 >>> 8) & 0xff}.${w3 & 0xff}`;
  }
  const g: number[] = [];
  for (let w = 0; w < KEY_WORDS; w++) {
    const v = key[offset + w]! >>> 0;
    g.push(v >>> 16, v & 0xffff);
  }
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 §4.2.2: a single zero group is not shortened
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    g
      .slice(from, to)
      .map((v) => v.toString(16))
      .join(":");
  if (bestStart < 0) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** The key of `address` as a new array, or undefined if it is not an IP address. Allocates; for tools. */
export function addressKey(address: string): Uint32Array | undefined {
  const out = new Uint32Array(KEY_WORDS);
  return parseAddressKey(address, out) ? out : undefined;
}
