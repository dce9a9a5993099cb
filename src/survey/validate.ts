// Checking a snapshot that came over the network (paper §5 survey input, format 1 of snapshot.ts) before
// consolidating it: a server running another version, a proxy's error page served as 200, or a URL pointing
// at something else must be reported as "wrong format" naming the field, not turn into NaN rates in the
// report. Pure; the fetcher calls it on every answer, the simulator need not (it builds snapshots itself).

import { KEY_WORDS, parsePrefixKey } from "../defence/address-key.ts";
import { SurveyError } from "./errors.ts";
import type { Snapshot, SnapshotClient, SnapshotCounters } from "./snapshot.ts";

type Obj = Record<string, unknown>;

function fail(source: string, path: string, reason: string): never {
  throw new SurveyError("ERR_SURVEY_FORMAT", `${source}: not a format-1 snapshot: ${path}: ${reason}`, {
    server: source,
  });
}

function show(v: unknown): string {
  if (v === undefined) return "nothing";
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function object(source: string, path: string, v: unknown): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    fail(source, path, `expected an object, got ${show(v)}`);
  return v as Obj;
}

function finite(source: string, path: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) fail(source, path, `expected a number, got ${show(v)}`);
  return v;
}

function nonNegative(source: string, path: string, v: unknown): number {
  const n = finite(source, path, v);
  if (n < 0) fail(source, path, `expected a number of at least 0, got ${n}`);
  return n;
}

function integer(source: string, path: string, v: unknown, min: number): number {
  const n = finite(source, path, v);
  if (!Number.isInteger(n) || n < min)
    fail(source, path, `expected an integer of at least ${min}, got ${show(v)}`);
  return n;
}

function string(source: string, path: string, v: unknown): string {
  if (typeof v !== "string") fail(source, path, `expected a string, got ${show(v)}`);
  return v;
}

function counters(source: string, v: unknown): SnapshotCounters {
  const o = object(source, "counters", v);
  return {
    received: nonNegative(source, "counters.received", o["received"]),
    served: nonNegative(source, "counters.served", o["served"]),
    kissed: nonNegative(source, "counters.kissed", o["kissed"]),
    dropped: nonNegative(source, "counters.dropped", o["dropped"]),
  };
}

function client(source: string, i: number, v: unknown): SnapshotClient {
  const p = `clients[${i}]`;
  const o = object(source, p, v);
  const address = string(source, `${p}.address`, o["address"]);
  // An address, or the prefix a server knows a client by ("2001:db8:1:2::/64").
  if (parsePrefixKey(address, new Uint32Array(KEY_WORDS)) < 0)
    fail(source, `${p}.address`, `not an IP address: ${show(address)}`);
  const firstSeen = finite(source, `${p}.firstSeen`, o["firstSeen"]);
  const lastSeen = finite(source, `${p}.lastSeen`, o["lastSeen"]);
  if (lastSeen < firstSeen) fail(source, `${p}.lastSeen`, `${lastSeen} is before firstSeen ${firstSeen}`);
  const restrictions = o["restrictions"];
  if (!Array.isArray(restrictions) || !restrictions.every((r) => typeof r === "string"))
    fail(source, `${p}.restrictions`, `expected an array of strings, got ${show(restrictions)}`);
  return {
    address,
    firstSeen,
    lastSeen,
    count: integer(source, `${p}.count`, o["count"], 1),
    avgInterval: nonNegative(source, `${p}.avgInterval`, o["avgInterval"]),
    mode: integer(source, `${p}.mode`, o["mode"], 0),
    version: integer(source, `${p}.version`, o["version"], 0),
    port: integer(source, `${p}.port`, o["port"], 0),
    gapped: integer(source, `${p}.gapped`, o["gapped"], 0),
    kods: integer(source, `${p}.kods`, o["kods"], 0),
    restrictions: [...(restrictions as string[])],
  };
}

/**
 * `value` (parsed JSON) as a Snapshot, or a SurveyError ERR_SURVEY_FORMAT naming the first bad field.
 * `source` (the URL or file) heads the message. Unknown extra fields are ignored (a newer server may add
 * some); the result holds only the fields of format 1.
 */
export function parseSnapshot(value: unknown, source: string): Snapshot {
  const o = object(source, "(top level)", value);
  if (o["format"] !== 1) {
    const why =
      typeof o["format"] === "number"
        ? `format ${o["format"]} is not understood (this ntpshield reads format 1)`
        : `expected 1, got ${show(o["format"])}`;
    fail(source, "format", why);
  }
  const server = string(source, "server", o["server"]);
  const takenAt = finite(source, "takenAt", o["takenAt"]);
  const startedAt = finite(source, "startedAt", o["startedAt"]);
  if (startedAt > takenAt) fail(source, "startedAt", `${startedAt} is after takenAt ${takenAt}`);
  const m = object(source, "mru", o["mru"]);
  const mru = {
    capacity: integer(source, "mru.capacity", m["capacity"], 0),
    size: integer(source, "mru.size", m["size"], 0),
    evicted: nonNegative(source, "mru.evicted", m["evicted"]),
    recycled: nonNegative(source, "mru.recycled", m["recycled"]),
    refused: nonNegative(source, "mru.refused", m["refused"]),
  };
  const list = o["clients"];
  if (!Array.isArray(list)) fail(source, "clients", `expected an array, got ${show(list)}`);
  const clients = list.map((c, i) => client(source, i, c));
  return { format: 1, server, takenAt, startedAt, counters: counters(source, o["counters"]), mru, clients };
}
