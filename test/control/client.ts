// The client side of mode 6 for the unit tests, written from the protocol (RFC 9327) and from what NTPsec's
// ntpq was seen to send: requests, reassembly of fragmented replies with the checks ntpq makes, and the
// mrulist retrieval loop (nonce, frags=, addr.N/last.N continuation, "now=" ends it).

import assert from "node:assert/strict";
import { type ControlContext, handleControl } from "../../src/control/mode6.ts";
import { addressKey, KEY_WORDS } from "../../src/defence/address-key.ts";

export function key(address: string): Uint32Array {
  const k = addressKey(address);
  assert.ok(k, address);
  assert.equal(k.length, KEY_WORDS);
  return k;
}

/** A request as ntpq builds it: version 2, LI 3, data padded to 4 octets (not counted). */
export function request(opcode: number, data = "", sequence = 1, associd = 0, padTo = 0): Uint8Array {
  const len = Math.max(padTo, (12 + data.length + 3) & ~3);
  const d = new Uint8Array(len);
  d[0] = (3 << 6) | (2 << 3) | 6;
  d[1] = opcode;
  d[2] = sequence >> 8;
  d[3] = sequence & 0xff;
  d[6] = associd >> 8;
  d[7] = associd & 0xff;
  d[10] = data.length >> 8;
  d[11] = data.length & 0xff;
  for (let i = 0; i < data.length; i++) d[12 + i] = data.charCodeAt(i);
  return d;
}

export interface Reply {
  opcode: number;
  error: boolean;
  /** Error code (status high octet) of an error reply. */
  errorCode: number;
  status: number;
  sequence: number;
  associd: number;
  text: string;
  datagrams: number;
  bytes: number;
}

/** Reassembles one reply's datagrams, checking every rule ntpq checks (and failing the test if one breaks). */
export function reassemble(datagrams: readonly Uint8Array[]): Reply {
  assert.ok(datagrams.length > 0, "no reply");
  const frags = datagrams.map((d) => {
    assert.ok(d.length >= 12, "fragment under 12 octets");
    assert.equal(d.length % 4, 0, "fragment not padded to 4 octets");
    assert.equal(d[0]! & 7, 6, "not mode 6");
    const version = (d[0]! >> 3) & 7;
    assert.ok(version >= 1 && version <= 4, `version ${version}`);
    assert.ok((d[1]! & 0x80) !== 0, "R bit clear in a reply");
    const count = (d[10]! << 8) | d[11]!;
    assert.ok(count <= 468, `count ${count} over 468`);
    assert.equal(d.length, (12 + count + 3) & ~3, "length is not header + count, padded");
    return {
      op: d[1]!,
      sequence: (d[2]! << 8) | d[3]!,
      status: (d[4]! << 8) | d[5]!,
      associd: (d[6]! << 8) | d[7]!,
      offset: (d[8]! << 8) | d[9]!,
      count,
      data: d.subarray(12, 12 + count),
      length: d.length,
    };
  });
  frags.sort((a, b) => a.offset - b.offset);
  let at = 0;
  let text = "";
  frags.forEach((f, i) => {
    assert.equal(f.offset, at, "hole or overlap between fragments");
    const last = i === frags.length - 1;
    assert.equal((f.op & 0x20) !== 0, !last, "M bit wrong");
    if (!last) assert.ok(f.count > 0, "empty non-final fragment");
    assert.equal(f.sequence, frags[0]!.sequence);
    assert.equal(f.op & 0x5f, frags[0]!.op & 0x5f);
    at += f.count;
    text += String.fromCharCode(...f.data);
  });
  const f0 = frags[0]!;
  return {
    opcode: f0.op & 0x1f,
    error: (f0.op & 0x40) !== 0,
    errorCode: f0.status >> 8,
    status: f0.status,
    sequence: f0.sequence,
    associd: f0.associd,
    text,
    datagrams: datagrams.length,
    bytes: frags.reduce((n, f) => n + f.length, 0),
  };
}

/** name=value pairs of a reply, in order (as ntpq splits them: commas outside quotes, trimmed). */
export function vars(text: string): [string, string][] {
  const out: [string, string][] = [];
  let item = "";
  let quoted = false;
  const flush = () => {
    const t = item.trim();
    item = "";
    if (!t) return;
    const eq = t.indexOf("=");
    out.push(eq < 0 ? [t, ""] : [t.slice(0, eq).trim(), t.slice(eq + 1).trim()]);
  };
  for (const c of text) {
    if (c === '"') quoted = !quoted;
    if (c === "," && !quoted) flush();
    else item += c;
  }
  flush();
  return out;
}

export function varMap(text: string): Map<string, string> {
  return new Map(vars(text));
}

/** Sends one request through handleControl; returns the result code and the datagrams. */
export function exchange(
  ctx: ControlContext,
  req: Uint8Array,
  from: string,
  nowMs: number,
  port = 40123,
): { result: number; out: Uint8Array[] } {
  const out: Uint8Array[] = [];
  const result = handleControl(req, req.length, { key: key(from), port }, nowMs, ctx, out);
  return { result, out };
}

export interface MruRow {
  addr: string;
  last: string;
  first: string;
  ct: number;
  mv: number;
  rs: number;
  dr: number;
}

/** The rows of one READ_MRU reply, by index, and whether it carried now=. */
export function mruRows(text: string): {
  rows: MruRow[];
  now: string | undefined;
  nonce: string | undefined;
} {
  const m = varMap(text);
  const rows: MruRow[] = [];
  for (let i = 0; m.has(`addr.${i}`); i++) {
    rows.push({
      addr: m.get(`addr.${i}`)!,
      last: m.get(`last.${i}`)!,
      first: m.get(`first.${i}`)!,
      ct: Number(m.get(`ct.${i}`)),
      mv: Number(m.get(`mv.${i}`)),
      rs: Number(m.get(`rs.${i}`)),
      dr: Number(m.get(`dr.${i}`)),
    });
  }
  return { rows, now: m.get("now"), nonce: m.get("nonce") };
}

/**
 * The whole mrulist retrieval as ntpq does it: a nonce, then READ_MRU rounds quoting the newest rows held
 * (as many as fit in 468 octets) until a reply carries now=; on CERR_UNKNOWNVAR (no quoted row still in
 * place) it starts over, at most 8 times, as ntpq does. `between(round)` runs before each round after the
 * first (to change the list meanwhile). Returns the rows stitched as ntpq does (per address, the one
 * with the latest last), oldest first, and the number of rounds.
 */
export function mrulist(
  ctx: ControlContext,
  from: string,
  nowMs: () => number,
  params = "",
  between: (round: number) => void = () => {},
  frags = 32,
): { rows: MruRow[]; rounds: number; replies: Reply[] } {
  const n = reassemble(exchange(ctx, request(12), from, nowMs()).out);
  assert.equal(n.error, false, "nonce request refused");
  let nonce = n.text.trim().slice("nonce=".length);
  const got: MruRow[] = [];
  const replies: Reply[] = [];
  let restarts = 0;
  for (let round = 0; round < 10_000; round++) {
    if (round > 0) between(round);
    let q = `nonce=${nonce}, frags=${frags}${params}`;
    for (let i = 0; i < 16 && i < got.length; i++) {
      const e = got[got.length - 1 - i]!;
      const item = `, addr.${i}=${e.addr}, last.${i}=${e.last}`;
      if (q.length + item.length >= 468) break;
      q += item;
    }
    const r = reassemble(exchange(ctx, request(10, q, round + 2), from, nowMs()).out);
    replies.push(r);
    if (r.error && r.errorCode === 5 && restarts < 8) {
      // CERR_UNKNOWNVAR: none of the quoted rows is still in place; ntpq starts over from the oldest.
      restarts++;
      got.length = 0;
      continue;
    }
    assert.equal(r.error, false, `READ_MRU round ${round} failed with error ${r.errorCode}`);
    assert.ok(r.datagrams <= frags, `${r.datagrams} datagrams for frags=${frags}`);
    const { rows, now, nonce: fresh } = mruRows(r.text);
    got.push(...rows);
    if (fresh) nonce = fresh;
    if (now !== undefined) {
      const latest = new Map<string, MruRow>();
      for (const row of got) {
        const prev = latest.get(row.addr.replace(/:\d+$/, ""));
        if (!prev || lfpValue(row.last) >= lfpValue(prev.last))
          latest.set(row.addr.replace(/:\d+$/, ""), row);
      }
      return { rows: [...latest.values()], rounds: round + 1, replies };
    }
  }
  throw new Error("mrulist never completed");
}

/** l_fp text as a number of seconds (NTP era, exact enough to order). */
export function lfpValue(text: string): number {
  const m = /^0x([0-9a-f]{8})\.([0-9a-f]{8})$/.exec(text);
  assert.ok(m, `not l_fp text: ${text}`);
  return Number.parseInt(m[1]!, 16) + Number.parseInt(m[2]!, 16) / 2 ** 32;
}
