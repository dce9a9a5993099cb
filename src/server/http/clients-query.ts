// /api/clients' query string read into a ClientQuery: the filters and sort orders of `ntpq -c mrulist` (its
// manual page). Pure: no I/O, so every bad parameter is a QueryError the endpoint answers with 400.

import { CodedError } from "../../base/errors.ts";

export type ClientSortKey = "lstint" | "avgint" | "addr" | "count" | "drop";
const SORT_KEYS: readonly ClientSortKey[] = ["lstint", "avgint", "addr", "count", "drop"];

/** The filters of `ntpq -c mrulist` (its manual page), as /api/clients takes them. */
export interface ClientQuery {
  /** Only clients whose last packet was rate-limited (rstr has 0x20), or kissed (0x400). */
  limited: boolean;
  kod: boolean;
  mincount: number;
  mindrop: number;
  /** Only clients heard from within this many seconds / not within. */
  maxlstint: number;
  minlstint: number;
  sort: ClientSortKey;
  /** "-" in front of the key: largest first. */
  descending: boolean;
  /** Most rows returned; Infinity = all. */
  limit: number;
}

/** A query parameter that cannot be read; its message names the parameter. */
export class QueryError extends CodedError<"ERR_HTTP_QUERY"> {
  constructor(message: string) {
    super("ERR_HTTP_QUERY", message);
  }
}

function flagParam(p: URLSearchParams, name: string): boolean {
  if (!p.has(name)) return false;
  const v = p.get(name)!;
  if (v === "" || v === "1" || v === "true" || v === "yes") return true;
  if (v === "0" || v === "false" || v === "no") return false;
  throw new QueryError(`${name}: expected no value, 1 or 0, got ${JSON.stringify(v)}`);
}

/** A number >= 0 (whole if `integer`), `fallback` when absent. Also reads /api/blocklist's limit. */
export function numberParam(p: URLSearchParams, name: string, fallback: number, integer: boolean): number {
  const v = p.get(name);
  if (v === null) return fallback;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n)))
    throw new QueryError(
      `${name}: expected ${integer ? "a whole number" : "a number"} >= 0, got ${JSON.stringify(v)}`,
    );
  return n;
}

const CLIENT_PARAMS = new Set([
  "limited",
  "kod",
  "mincount",
  "mindrop",
  "maxlstint",
  "minlstint",
  "sort",
  "limit",
]);

/** Reads /api/clients' query string. Throws QueryError (400) naming the bad parameter. */
export function parseClientQuery(p: URLSearchParams): ClientQuery {
  for (const k of p.keys()) {
    if (!CLIENT_PARAMS.has(k))
      throw new QueryError(`unknown parameter ${JSON.stringify(k)}; known: ${[...CLIENT_PARAMS].join(", ")}`);
  }
  let sort: ClientSortKey = "lstint";
  let descending = false;
  const s = p.get("sort");
  if (s !== null) {
    const key = s.startsWith("-") ? s.slice(1) : s;
    if (!(SORT_KEYS as readonly string[]).includes(key))
      throw new QueryError(
        `sort: expected one of ${SORT_KEYS.join(", ")} (a "-" in front reverses), got ${JSON.stringify(s)}`,
      );
    sort = key as ClientSortKey;
    descending = s.startsWith("-");
  }
  const limit = numberParam(p, "limit", 0, true);
  return {
    limited: flagParam(p, "limited"),
    kod: flagParam(p, "kod"),
    mincount: numberParam(p, "mincount", 0, true),
    mindrop: numberParam(p, "mindrop", 0, true),
    maxlstint: numberParam(p, "maxlstint", Number.POSITIVE_INFINITY, false),
    minlstint: numberParam(p, "minlstint", 0, false),
    sort,
    descending,
    limit: limit === 0 ? Number.POSITIVE_INFINITY : limit,
  };
}
