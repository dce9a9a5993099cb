// READ_MRU (opcode 10): the MRU list (paper §5) as `ntpq -c mrulist` reads it, in several request/reply
// rounds. Only after the nonce handshake (nonce.ts): the request's `nonce=` must be one this server issued
// to the requester's address, checked by the caller (mode6.ts).
//
// The protocol, as ntpd defines it and NTPsec's ntpq speaks it:
//
// - A reply carries rows oldest first: addr.N (address:port), last.N and first.N (l_fp hex), ct.N (packets),
//   mv.N (the last packet's version << 3 | mode, hex), rs.N (restriction bits, hex), dr.N (packets dropped
//   or kissed); N counts from 0 in each reply. It opens with a fresh `nonce=` for the next round.
// - A client known by a prefix shorter than its address ([mru] ipv6-prefix, docs/defences-mru.md) is one
//   row: addr.N is the last address seen (ntpq reads it as an address and a port, and quotes it back), and
//   pfx.N, a tag ntpq passes over, says the prefix length (64 for 2001:db8:1:2::/64). An address ntpq quotes
//   finds its record through the same prefix.
// - The walk runs from the oldest record toward the newest. A record touched meanwhile moves to the newest
//   end, ahead of the walk, and is met again later with its new times; ntpq keeps, per address, the row
//   with the latest last.N. Walking the other way would miss it.
// - The reply stops when it has `frags=` datagrams' worth of rows (or `limit=` rows); ntpq then asks again,
//   quoting the newest rows it has as addr.0/last.0 (newest), addr.1/last.1, ... The next reply resumes just
//   after the first quoted row still in the list with that same last time: a row whose record was touched
//   since no longer matches (its record moved), and the next one is tried. None matching is
//   CERR_UNKNOWNVAR, on which ntpq starts over.
// - When the walk reaches the newest record, the reply ends with `now=` (the server's clock) and
//   `last.newest=`; ntpq stops asking. ntpq sorts (sort=) and prints newest first itself.
//
// Filters (ntpq's mrulist options): mincount=, mindrop=, maxlstint=, minlstint= (seconds since the last
// packet), resall=/resany= (hex masks over rs; ntpq turns `limited` and `kod` into resany), recent=N (start
// at the Nth newest record), and limit=1 with addr.N alone (just those addresses). Not supported, answered
// with CERR_BADFMT: laddr= (one local address per socket here) and minscore= (no score is kept).
//
// The rs bits are ntpd's restriction bits, from what the server did with the client's last packet (ntpq's
// manual: "0x400 (kod) and 0x20 (limited) flags are cleared unless the last packet from this address
// triggered a rate control response"): 0x20 limited (gapped by the call-gap), 0x400 kod (kissed),
// 0x2 noserve (refused by an access list), 0x40 noquery (a refused control request).
//
// Locking: the rows are copied out under the MRU lock in one pass (a few loads per record, no allocation
// per record) and formatted after it is released, so the workers wait for a copy, never for string work.
// With a filter that rejects most records, one pass may visit the whole list; it is bounded by the list's
// capacity and measured in docs/ntpq.md.

import {
  R_DROP_ACL_NOSERVE,
  R_DROP_GAPPED,
  R_DROP_KOD_LIMITED,
  R_DROP_NOQUERY,
  R_KISS_DENY,
  R_KISS_RATE,
  R_KISS_RSTR,
  R_SERVED_LEAK,
} from "../core/reasons.ts";
import {
  formatAddressKey,
  isIPv4Key,
  KEY_BITS,
  KEY_WORDS,
  parseAddressKey,
  prefixLengthOf,
} from "../defence/address-key.ts";
import type { MruList } from "../defence/mru.ts";
import { CERR_BADFMT, CERR_UNKNOWNVAR, CTL_MAX_DATA, lfpText, type RequestVar, VarText } from "./codec.ts";

// ntpd's restriction bits (RES_* in ntpd's ntp.h, as ntpq's ntp/magic.py names them).
export const RES_DONTSERVE = 0x0002;
export const RES_LIMITED = 0x0020;
export const RES_NOQUERY = 0x0040;
export const RES_KOD = 0x0400;

/** Most datagrams in one READ_MRU reply (ntpq asks for at most 32, its MAXFRAGS). */
export const MRU_MAX_FRAGS = 32;
/** Most rows in one reply (ntpq's MRU_ROW_LIMIT). */
export const MRU_MAX_ROWS = 256;
/** addr.N/last.N indices ntpq may quote (0-15). */
const MAX_MARKS = 16;

/** The restriction bits of a client from the reason of its last packet. */
export function restrictionBits(lastReason: number): number {
  switch (lastReason) {
    case R_DROP_GAPPED:
    case R_SERVED_LEAK:
    case R_DROP_KOD_LIMITED:
      return RES_LIMITED;
    case R_KISS_RATE:
      return RES_LIMITED | RES_KOD;
    case R_KISS_RSTR:
    case R_KISS_DENY:
      return RES_DONTSERVE | RES_KOD;
    case R_DROP_ACL_NOSERVE:
      return RES_DONTSERVE;
    case R_DROP_NOQUERY:
      return RES_NOQUERY;
    default:
      return 0;
  }
}

/** A parsed READ_MRU request (without its nonce). */
export interface MruRequest {
  /** Most datagrams in the reply (frags=), or undefined when limit= rules. */
  frags: number | undefined;
  /** Most rows in the reply (limit=). */
  limit: number | undefined;
  mincount: number;
  mindrop: number;
  maxlstint: number;
  minlstint: number;
  resall: number;
  resany: number;
  recent: number;
  /** addr.N / last.N by N (0-15). */
  marks: { key: Uint32Array | undefined; last: string | undefined }[];
}

const INT_RE = /^(0x[0-9a-f]{1,8}|[0-9]{1,10})$/i;
const SECONDS_RE = /^[0-9]{1,10}(\.[0-9]{1,9})?$/;

function parseInt0(v: string | undefined): number | undefined {
  if (v === undefined || !INT_RE.test(v)) return undefined;
  return Number(v.toLowerCase());
}

/** An address as ntpq writes it: "a.b.c.d:port", "[v6]:port", or without the port. */
export function parseMruAddress(text: string): Uint32Array | undefined {
  let host = text.trim();
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return undefined;
    host = host.slice(1, end);
  } else if (host.indexOf(":") === host.lastIndexOf(":") && host.includes(":")) {
    host = host.slice(0, host.indexOf(":")); // IPv4 with a port
  }
  const key = new Uint32Array(KEY_WORDS);
  return parseAddressKey(host, key) ? key : undefined;
}

/**
 * Reads a READ_MRU request's items (the nonce item is skipped: the caller checked it). Returns the request
 * or a CERR_* code.
 */
export function parseMruRequest(vars: readonly RequestVar[]): MruRequest | number {
  const q: MruRequest = {
    frags: undefined,
    limit: undefined,
    mincount: 0,
    mindrop: 0,
    maxlstint: Number.POSITIVE_INFINITY,
    minlstint: 0,
    resall: 0,
    resany: 0,
    recent: 0,
    marks: [],
  };
  for (const { name, value } of vars) {
    const dot = name.indexOf(".");
    if (dot > 0 && (name.startsWith("addr.") || name.startsWith("last."))) {
      const idx = name.slice(dot + 1);
      if (!/^[0-9]{1,2}$/.test(idx) || Number(idx) >= MAX_MARKS || value === undefined) return CERR_BADFMT;
      const n = Number(idx);
      while (q.marks.length <= n) q.marks.push({ key: undefined, last: undefined });
      const mark = q.marks[n]!;
      if (name.startsWith("addr.")) {
        const key = parseMruAddress(value);
        if (key === undefined) return CERR_BADFMT;
        mark.key = key;
      } else {
        mark.last = value.toLowerCase();
      }
      continue;
    }
    switch (name) {
      case "nonce":
      case "sort": // ntpq sorts for itself; an older client may still send it
        break;
      case "frags":
      case "limit":
      case "mincount":
      case "mindrop":
      case "resall":
      case "resany":
      case "recent": {
        const n = parseInt0(value);
        if (n === undefined) return CERR_BADFMT;
        if (name === "frags") q.frags = Math.max(1, Math.min(n, MRU_MAX_FRAGS));
        else if (name === "limit") q.limit = Math.max(1, Math.min(n, MRU_MAX_ROWS));
        else if (name === "resall") q.resall = n;
        else if (name === "resany") q.resany |= n;
        else if (name === "mincount") q.mincount = n;
        else if (name === "mindrop") q.mindrop = n;
        else q.recent = n;
        break;
      }
      case "maxlstint":
      case "minlstint":
        if (value === undefined || !SECONDS_RE.test(value)) return CERR_BADFMT;
        if (name === "maxlstint") q.maxlstint = Number(value);
        else q.minlstint = Number(value);
        break;
      case "kod":
      case "limited":
        if (value !== undefined) return CERR_BADFMT;
        q.resany |= name === "kod" ? RES_KOD : RES_LIMITED;
        break;
      default:
        return CERR_BADFMT; // laddr= (one local address per socket), minscore= (no score kept), a typo
    }
  }
  // Without frags= or limit=, a reply fills at most one datagram (ntpd's default is a small row limit).
  if (q.frags === undefined && q.limit === undefined) q.frags = 1;
  return q;
}

/** Rows copied out of the list under its lock. */
class Rows {
  n = 0;
  /** The record's key (the client: an address or a prefix). */
  readonly keys: Uint32Array;
  /** The last source address seen, shown as addr.N. */
  readonly sources: Uint32Array;
  /** The record's prefix length in key bits (KEY_BITS: the whole address, no pfx.N). */
  readonly bits: Uint8Array;
  readonly first: Float64Array;
  readonly last: Float64Array;
  readonly count: Uint32Array;
  readonly dropped: Uint32Array;
  readonly port: Uint16Array;
  readonly mv: Uint8Array;
  readonly rs: Uint16Array;

  constructor(capacity: number) {
    this.keys = new Uint32Array(capacity * KEY_WORDS);
    this.sources = new Uint32Array(capacity * KEY_WORDS);
    this.bits = new Uint8Array(capacity);
    this.first = new Float64Array(capacity);
    this.last = new Float64Array(capacity);
    this.count = new Uint32Array(capacity);
    this.dropped = new Uint32Array(capacity);
    this.port = new Uint16Array(capacity);
    this.mv = new Uint8Array(capacity);
    this.rs = new Uint16Array(capacity);
  }

  get full(): boolean {
    return this.n >= this.first.length;
  }

  copy(mru: MruList, r: number, rs: number): void {
    const i = this.n++;
    for (let w = 0; w < KEY_WORDS; w++) {
      this.keys[i * KEY_WORDS + w] = mru.keys[r * KEY_WORDS + w]!;
      this.sources[i * KEY_WORDS + w] = mru.sources[r * KEY_WORDS + w]!;
    }
    this.bits[i] = mru.prefixBits[r]!;
    this.first[i] = mru.firstSeen[r]!;
    this.last[i] = mru.lastSeen[r]!;
    this.count[i] = mru.count[r]!;
    this.dropped[i] = mru.gapped[r]!;
    this.port[i] = mru.port[r]!;
    this.mv[i] = ((mru.version[r]! & 7) << 3) | (mru.mode[r]! & 7);
    this.rs[i] = rs;
  }
}

/** Records visited per hold of the MRU lock when a filter skips records (about 20-40 us). */
const WALK_CHUNK = 2048;
const stampKey = new Uint32Array(KEY_WORDS);

/** Whether record r still holds the client it held when stamped (same key, not touched since). */
function sameRecord(mru: MruList, r: number, key: Uint32Array, seen: number): boolean {
  const k = r * KEY_WORDS;
  return (
    mru.keys[k] === key[0] &&
    mru.keys[k + 1] === key[1] &&
    mru.keys[k + 2] === key[2] &&
    mru.keys[k + 3] === key[3] &&
    mru.lastSeen[r] === seen
  );
}

/** Room kept for the closing "now=..., last.newest=..." (two l_fp texts and their names). */
const END_RESERVE = 64;

/** The MRU reply's text, or a CERR_* code. */
export interface MruReplyText {
  text: string;
  /** Rows in it. */
  rows: number;
  /** Whether it ends the retrieval (carries now=). */
  complete: boolean;
}

/**
 * Builds the reply to one READ_MRU round. `nowMs` is the server's clock (Unix ms); `offsetS` turns the
 * list's times into Unix seconds; `nonce` is the fresh nonce the reply opens with; `clientKey` turns an
 * address ntpq names into the key of its record (its prefix; default: the address itself).
 */
export function readMruList(
  q: MruRequest,
  mru: MruList,
  nowMs: number,
  offsetS: number,
  nonce: string,
  clientKey?: (address: Uint32Array, out: Uint32Array) => void,
): MruReplyText | number {
  if (clientKey !== undefined) {
    for (const m of q.marks) {
      if (m.key === undefined) continue;
      const k = new Uint32Array(KEY_WORDS);
      clientKey(m.key, k);
      m.key = k;
    }
  }
  const nowS = nowMs / 1000;
  const budget = (q.frags ?? MRU_MAX_FRAGS) * CTL_MAX_DATA;
  // limit=1 with bare addr.N: just those clients (ntpq's manual), at most one row each.
  const named = q.limit === 1 && q.marks.some((m) => m.key !== undefined && m.last === undefined);
  // A row takes at least ~95 octets (IPv4, small counts), so frags datagrams hold at most 5 rows each.
  const rowCap = named
    ? MAX_MARKS
    : Math.min(MRU_MAX_ROWS, q.limit ?? MRU_MAX_ROWS, q.frags === undefined ? MRU_MAX_ROWS : q.frags * 5);
  const rows = new Rows(rowCap);
  const lower = (s: number) => s + offsetS; // list time -> Unix seconds
  let complete = false;
  let newestLast = Number.NaN;
  let unmatched = false;

  const passes = (r: number, rs: number): boolean => {
    if (mru.count[r]! < q.mincount || mru.gapped[r]! < q.mindrop) return false;
    const lstint = nowS - lower(mru.lastSeen[r]!);
    if (lstint > q.maxlstint || lstint < q.minlstint) return false;
    if ((rs & q.resall) !== q.resall) return false;
    return q.resany === 0 || (rs & q.resany) !== 0;
  };

  mru.lock();
  let locked = true;
  try {
    const newest = mru.newestLocked();
    if (newest >= 0) newestLast = mru.lastSeen[newest]!;
    if (named) {
      const listed: number[] = []; // two addresses of one prefix name one record: one row
      for (const m of q.marks) {
        if (m.key === undefined || rows.full) continue;
        const r = mru.lookupLocked(m.key);
        if (r < 0 || listed.includes(r)) continue;
        listed.push(r);
        rows.copy(mru, r, restrictionBits(mru.lastReason[r]!));
      }
      complete = true;
    } else {
      let r: number;
      const quoted = q.marks.filter((m) => m.key !== undefined && m.last !== undefined);
      if (quoted.length > 0) {
        r = -2;
        for (const m of quoted) {
          const at = mru.lookupLocked(m.key!);
          if (at >= 0 && lfpText(lower(mru.lastSeen[at]!)) === m.last) {
            r = mru.newerLocked(at);
            break;
          }
        }
        if (r === -2) unmatched = true;
      } else if (q.recent > 0) {
        r = newest;
        for (let i = 1; i < q.recent && r >= 0 && mru.olderLocked(r) >= 0; i++) r = mru.olderLocked(r);
      } else {
        r = mru.oldestLocked();
      }
      if (!unmatched) {
        // Each step moves one record toward the newest end. Every WALK_CHUNK steps the lock is released
        // for a moment (a filter that rejects most records could otherwise hold it for a whole pass); the
        // walk resumes after the last record visited if that record is untouched (then everything newer
        // than it is still ahead), and otherwise ends this reply early: ntpq asks again from its last row.
        let steps = 0;
        let prev = -1;
        let interrupted = false;
        while (r >= 0 && !rows.full) {
          if (++steps % WALK_CHUNK === 0 && prev >= 0) {
            const stampSeen = mru.lastSeen[prev]!;
            for (let w = 0; w < KEY_WORDS; w++) stampKey[w] = mru.keys[prev * KEY_WORDS + w]!;
            mru.unlock();
            locked = false;
            mru.lock();
            locked = true;
            if (!sameRecord(mru, prev, stampKey, stampSeen)) {
              interrupted = true;
              break;
            }
            r = mru.newerLocked(prev);
            if (r < 0) break;
          }
          const rs = restrictionBits(mru.lastReason[r]!);
          if (passes(r, rs)) rows.copy(mru, r, rs);
          prev = r;
          r = mru.newerLocked(r);
        }
        complete = r < 0 && !interrupted;
      }
    }
  } finally {
    if (locked) mru.unlock();
  }
  if (unmatched) return CERR_UNKNOWNVAR;

  const out = new VarText();
  out.add("nonce", nonce);
  let sent = 0;
  for (let i = 0; i < rows.n; i++) {
    const items = rowItems(rows, i, lower);
    let length = out.text.length;
    for (const item of items) length += 3 + item.length + 2; // separators and a possible line break
    if (length > budget - END_RESERVE) {
      complete = false; // rows left over: ntpq asks again from the last row it got
      break;
    }
    for (const item of items) out.addItem(item);
    sent++;
  }
  if (complete) {
    out.add("now", lfpText(nowS));
    if (!Number.isNaN(newestLast)) out.add("last.newest", lfpText(lower(newestLast)));
  }
  return { text: out.text, rows: sent, complete };
}

function rowItems(rows: Rows, i: number, lower: (s: number) => number): string[] {
  const address = formatAddressKey(rows.sources, i * KEY_WORDS);
  const host = isIPv4Key(rows.sources, i * KEY_WORDS) ? address : `[${address}]`;
  const bits = rows.bits[i]!;
  const items = [
    `addr.${i}=${host}:${rows.port[i]}`,
    `last.${i}=${lfpText(lower(rows.last[i]!))}`,
    `first.${i}=${lfpText(lower(rows.first[i]!))}`,
    `ct.${i}=${rows.count[i]}`,
    `mv.${i}=0x${rows.mv[i]!.toString(16)}`,
    `rs.${i}=0x${rows.rs[i]!.toString(16)}`,
    `dr.${i}=${rows.dropped[i]}`,
  ];
  if (bits < KEY_BITS) items.push(`pfx.${i}=${prefixLengthOf(rows.keys, bits, i * KEY_WORDS)}`);
  return items;
}
