import { ConfigError } from "./errors.ts";

/**
 * A parsed "HOST:PORT". `host` is canonical: dotted quad for IPv4 (IPv4-mapped IPv6 is unmapped, since
 * that is the address actually on the wire), RFC 5952 text for IPv6 (with "%zone" kept for link-local
 * use), lower case for names. family 0 = a name still to be resolved.
 */
export interface HostPort {
  readonly host: string;
  readonly port: number;
  readonly family: 4 | 6 | 0;
}

export interface HostPortRules {
  /** Port to use when the text has none; without it a port is required. */
  defaultPort?: number | undefined;
  /** Whether DNS names are accepted (family 0); listen addresses must be literal. */
  names?: boolean | undefined;
}

/** Either the parsed address or why it is not one (a phrase, without the input, for the caller to place). */
export type HostPortResult = { ok: true; value: HostPort } | { ok: false; reason: string };

const PORT_RANGE = "port must be a number from 1 to 65535";

/** Parses dotted-quad IPv4 strictly: four decimal parts 0-255, no leading zeros (inet_aton reads them as octal). */
export function parseIPv4(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/** Parses IPv6 text (RFC 4291 §2.2, including a trailing dotted quad) into eight 16-bit groups. */
export function parseIPv6(s: string): number[] | undefined {
  if (s.length === 0 || s.length > 45) return undefined;
  let text = s;
  let tail: number[] = [];
  // A trailing dotted quad stands for the last two groups (RFC 4291 §2.2 form 3).
  const lastColon = text.lastIndexOf(":");
  if (lastColon >= 0 && text.indexOf(".", lastColon) >= 0) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    text = text.slice(0, lastColon + 1);
    // "::1.2.3.4" leaves "::"; "64:ff9b::1.2.3.4" leaves "64:ff9b::"; "1::2:1.2.3.4" leaves "1::2:".
    if (text.endsWith(":") && !text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = groupsOf(halves[0]!);
  if (head === undefined) return undefined;
  if (halves.length === 1) {
    const all = [...head, ...tail];
    return all.length === 8 ? all : undefined;
  }
  const rest = groupsOf(halves[1]!);
  if (rest === undefined) return undefined;
  const known = head.length + rest.length + tail.length;
  // "::" stands for at least one zero group (RFC 5952 §4.2.2 says at least two when printing, but
  // RFC 4291 accepts one when reading).
  if (known > 7) return undefined;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

/** RFC 5952 §4 canonical text: lower case, no leading zeros, the longest run (>1) of zero groups as "::". */
export function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

function isMappedIPv4(g: readonly number[]): boolean {
  return g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
}

/** A literal IPv6 address with an optional "%zone", canonicalised; undefined if it is not one. */
function ipv6Host(text: string): { host: string; family: 4 | 6 } | undefined {
  const pct = text.indexOf("%");
  const addr = pct < 0 ? text : text.slice(0, pct);
  const zone = pct < 0 ? undefined : text.slice(pct + 1);
  if (zone !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(zone)) return undefined;
  const g = parseIPv6(addr);
  if (g === undefined) return undefined;
  if (isMappedIPv4(g) && zone === undefined) {
    return { host: `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`, family: 4 };
  }
  return { host: formatIPv6(g) + (zone === undefined ? "" : `%${zone}`), family: 6 };
}

/** RFC 1123 §2.1 host name; the last label may not be all digits (RFC 3696 §2), so "1.2.3.400" is no name. */
function isHostName(s: string): boolean {
  const name = s.endsWith(".") ? s.slice(0, -1) : s;
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split(".");
  for (const l of labels) {
    if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) return false;
  }
  return !/^[0-9]+$/.test(labels[labels.length - 1]!);
}

function parsePort(s: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function hostResult(host: string, port: number, rules: HostPortRules): HostPortResult {
  if (host === "") return { ok: false, reason: "host is missing" };
  const v4 = parseIPv4(host);
  if (v4 !== undefined) return { ok: true, value: { host: v4.join("."), port, family: 4 } };
  if (/^[0-9.]+$/.test(host)) {
    return { ok: false, reason: "not a valid IPv4 address (four decimal numbers 0-255, no leading zeros)" };
  }
  if (!isHostName(host)) return { ok: false, reason: "not a valid host name or IP address" };
  if (rules.names !== true) return { ok: false, reason: "must be an IP address, not a name" };
  return { ok: true, value: { host: host.toLowerCase().replace(/\.$/, ""), port, family: 0 } };
}

/** Parses "HOST:PORT", "[IPv6]:PORT", and (with a default port) "HOST", "[IPv6]" or a bare IPv6 address. */
export function tryParseHostPort(s: string, rules: HostPortRules = {}): HostPortResult {
  const def = rules.defaultPort;
  const noPort = (): HostPortResult => ({ ok: false, reason: "port is missing (write HOST:PORT)" });
  if (s.length === 0) return { ok: false, reason: "is empty" };
  if (s.length > 300) return { ok: false, reason: "is too long" };
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return { ok: false, reason: 'missing "]" after the IPv6 address' };
    const v6 = ipv6Host(s.slice(1, close));
    if (v6 === undefined) return { ok: false, reason: "not a valid IPv6 address inside [ ]" };
    const after = s.slice(close + 1);
    let port: number | undefined;
    if (after === "") {
      if (def === undefined) return noPort();
      port = def;
    } else if (after.startsWith(":")) {
      port = parsePort(after.slice(1));
      if (port === undefined) return { ok: false, reason: PORT_RANGE };
    } else {
      return { ok: false, reason: 'unexpected text after "]" (write [IPv6]:PORT)' };
    }
    return { ok: true, value: { host: v6.host, port, family: v6.family } };
  }
  const colons = s.split(":").length - 1;
  if (colons >= 2) {
    // Bare IPv6: a port cannot be told apart from the last group, so only the default port applies.
    const v6 = ipv6Host(s);
    if (v6 === undefined) return { ok: false, reason: "not a valid IPv6 address (write [IPv6]:PORT)" };
    if (def === undefined)
      return { ok: false, reason: "port is missing (an IPv6 address with a port is written [IPv6]:PORT)" };
    return { ok: true, value: { host: v6.host, port: def, family: v6.family } };
  }
  if (colons === 0) {
    if (def === undefined) return noPort();
    return hostResult(s, def, rules);
  }
  const colon = s.indexOf(":");
  const port = parsePort(s.slice(colon + 1));
  if (port === undefined) return { ok: false, reason: PORT_RANGE };
  return hostResult(s.slice(0, colon), port, rules);
}

/**
 * Parses "HOST:PORT" (see tryParseHostPort); names are accepted (family 0). Throws ConfigError
 * (ERR_CONFIG_INVALID) naming the input when it is not an address.
 */
export function parseHostPort(s: string, defaultPort?: number): HostPort {
  const text = String(s);
  const r = tryParseHostPort(text, { defaultPort, names: true });
  if (r.ok) return r.value;
  throw new ConfigError("", `${r.reason}, got ${JSON.stringify(text)}`);
}

/** The inverse of parseHostPort: "1.2.3.4:123", "[::1]:123", "name:123". */
export function formatHostPort(hp: HostPort): string {
  return hp.family === 6 ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
