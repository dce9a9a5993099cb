// /api/clients' rows: the MRU list (paper §5, "finding the elephants") in the columns of `ntpq -c mrulist`,
// filtered, sorted and cut as ClientQuery (clients-query.ts) asks, so the two tools show the same picture.

import { RES_KOD, RES_LIMITED, restrictionBits } from "../../control/mrulist.ts";
import { REASON_NAMES } from "../../core/reasons.ts";
import { isIPv4Key, parsePrefixKey } from "../../defence/address-key.ts";
import type { MruEntry } from "../../defence/mru.ts";
import { defaultRestrictionNames } from "../../survey/from-mru.ts";
import type { ClientQuery } from "./clients-query.ts";

/** One row of /api/clients: mrulist's columns, and the record's other fields. Times in Unix seconds. */
export interface ClientRow {
  /** The client: its address, or "prefix/length" where clients are known by a shorter prefix. */
  address: string;
  /** The last source address seen from it (the address itself when not a prefix). */
  lastAddress: string;
  /** The length of the prefix it is known by (32 or 128: the whole address). */
  prefixLength: number;
  /** Source port of the last packet (rport). */
  port: number;
  /** Seconds since the last packet. */
  lstint: number;
  /** ntpq's average interval: (last - first) / (count - 1), 0 for one packet. */
  avgint: number;
  /** ntpd's restriction bits from what was done with the last packet (ntpq's rstr, shown in hex). */
  rstr: number;
  /** "K" kissed, "L" rate-limited, "." neither: ntpq's r column. */
  r: "K" | "L" | ".";
  mode: number;
  version: number;
  count: number;
  /** Packets the call-gap refused (ntpq's drop). */
  drop: number;
  kods: number;
  firstSeen: number;
  lastSeen: number;
  /** The MRU list's exponentially averaged interval (what the call-gap's rule 2 reads). */
  avgIntervalEwma: number;
  /** Everything ever applied to this client (flags kept in the record): "limited", "kod". */
  restrictions: string[];
  /** What was done with its last packet (a reason name, src/core/reasons.ts). */
  lastReason: string;
}

export function clientRow(e: MruEntry, nowS: number): ClientRow {
  const rstr = restrictionBits(e.lastReason);
  return {
    address: e.address,
    lastAddress: e.lastAddress,
    prefixLength: e.prefixLength,
    port: e.port,
    lstint: Math.max(0, nowS - e.lastSeen),
    avgint: e.count > 1 ? (e.lastSeen - e.firstSeen) / (e.count - 1) : 0,
    rstr,
    r: rstr & RES_KOD ? "K" : rstr & RES_LIMITED ? "L" : ".",
    mode: e.mode,
    version: e.version,
    count: e.count,
    drop: e.gapped,
    kods: e.kods,
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    avgIntervalEwma: e.avgInterval,
    restrictions: defaultRestrictionNames(e.flags),
    lastReason: REASON_NAMES[e.lastReason] ?? String(e.lastReason),
  };
}

/**
 * A text key ordering IPv4 addresses before IPv6 ones, each numerically, as ntpq's sort=addr does; a prefix
 * sorts at its first address, before the addresses it covers would.
 */
function addressSortKey(address: string): string {
  const key = new Uint32Array(4);
  const bits = parsePrefixKey(address, key);
  if (bits < 0) return address;
  const hex = Array.from(key, (w) => w.toString(16).padStart(8, "0")).join("");
  return (isIPv4Key(key) ? "0" : "1") + hex + bits.toString(16).padStart(2, "0");
}

/** Applies the filters, the sort and the limit, as ntpq would show the rows from the top. */
export function selectClients(rows: readonly ClientRow[], q: ClientQuery): ClientRow[] {
  const res = (q.limited ? RES_LIMITED : 0) | (q.kod ? RES_KOD : 0);
  const kept = rows.filter(
    (c) =>
      (res === 0 || (c.rstr & res) !== 0) &&
      c.count >= q.mincount &&
      c.drop >= q.mindrop &&
      c.lstint <= q.maxlstint &&
      c.lstint >= q.minlstint,
  );
  const sign = q.descending ? -1 : 1;
  switch (q.sort) {
    case "lstint":
      // The list is newest first already; a stable sort keeps ties in that order.
      kept.sort((a, b) => sign * (a.lstint - b.lstint));
      break;
    case "avgint":
      kept.sort((a, b) => sign * (a.avgint - b.avgint));
      break;
    case "count":
      kept.sort((a, b) => sign * (a.count - b.count));
      break;
    case "drop":
      kept.sort((a, b) => sign * (a.drop - b.drop));
      break;
    case "addr": {
      const keys = new Map(kept.map((c) => [c, addressSortKey(c.address)]));
      kept.sort((a, b) => sign * (keys.get(a)! < keys.get(b)! ? -1 : keys.get(a)! > keys.get(b)! ? 1 : 0));
      break;
    }
  }
  return Number.isFinite(q.limit) ? kept.slice(0, q.limit) : kept;
}
