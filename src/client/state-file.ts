// The client's memory across runs (paper §11; RFC 5905 §7.4; RFC 8633 §3.4): the servers that told us DENY
// or RSTR, each with an expiry. A device that reboots, or a script run every hour, must not come back to a
// server that asked it to stop, so refusals are kept in a small JSON file and honoured by the next run
// until they expire (default 7 days: long enough to outlast reboot loops and cron schedules, short enough
// that a server that changed its policy, or an address that changed hands, is tried again one day).
//
// The format (version 1), one object per refusing server address:
//   {"version":1,"refusals":[{"address":"192.0.2.7","port":123,"host":"ntp.example.net","code":"DENY",
//     "since":"2026-01-01T00:00:00.000Z","until":"2026-01-08T00:00:00.000Z"}]}
// Reading is tolerant: an entry that does not parse is dropped and reported, a file that is not JSON at
// all is reported and treated as empty (the client must keep working), a missing file is empty. Writing
// replaces the file atomically (a temporary file renamed over it), so a crash never leaves half a file.
// At most MAX_REFUSALS entries are kept, the newest.
//
// The parse/serialise/prune functions are pure; readStateFile/writeStateFile do the file I/O.

import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { ClientError } from "./errors.ts";

export const STATE_FILE_VERSION = 1;
/** Default lifetime of a DENY/RSTR refusal, seconds: 7 days. */
export const REFUSAL_EXPIRY_S = 7 * 86400;
/** Most refusals kept in the file. */
export const MAX_REFUSALS = 1000;

/** A server address that sent DENY or RSTR, and until when we leave it alone. */
export interface Refusal {
  /** The address that sent the kiss (text, as the socket reported it, IPv4-mapped unmapped). */
  readonly address: string;
  readonly port: number;
  /** The name we had resolved to reach it (the address itself for a literal). */
  readonly host: string;
  readonly code: "DENY" | "RSTR";
  /** Unix ms (wall clock: the expiry must survive a reboot, which a monotonic clock does not). */
  readonly sinceMs: number;
  readonly untilMs: number;
}

export interface ParsedState {
  refusals: Refusal[];
  /** What was wrong with the file, one sentence per problem. */
  problems: string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses the file's text. Never throws: what cannot be read is left out and reported in `problems`. */
export function parseState(text: string): ParsedState {
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { refusals: [], problems: [`not JSON (${(err as Error).message}); starting with no refusals`] };
  }
  if (!isRecord(doc) || doc["version"] !== STATE_FILE_VERSION || !Array.isArray(doc["refusals"])) {
    return {
      refusals: [],
      problems: [`not a version ${STATE_FILE_VERSION} state file; starting with no refusals`],
    };
  }
  const refusals: Refusal[] = [];
  for (const [i, e] of (doc["refusals"] as unknown[]).entries()) {
    const ok =
      isRecord(e) &&
      typeof e["address"] === "string" &&
      e["address"] !== "" &&
      Number.isInteger(e["port"]) &&
      (e["port"] as number) >= 1 &&
      (e["port"] as number) <= 65535 &&
      typeof e["host"] === "string" &&
      (e["code"] === "DENY" || e["code"] === "RSTR") &&
      typeof e["since"] === "string" &&
      typeof e["until"] === "string" &&
      Number.isFinite(Date.parse(e["since"])) &&
      Number.isFinite(Date.parse(e["until"]));
    if (!ok) {
      problems.push(`refusals[${i}] is malformed and was dropped`);
      continue;
    }
    refusals.push({
      address: e["address"] as string,
      port: e["port"] as number,
      host: e["host"] as string,
      code: e["code"] as "DENY" | "RSTR",
      sinceMs: Date.parse(e["since"] as string),
      untilMs: Date.parse(e["until"] as string),
    });
  }
  return { refusals, problems };
}

/** The file's text for these refusals (the newest MAX_REFUSALS). */
export function serializeState(refusals: readonly Refusal[]): string {
  const kept = [...refusals].sort((a, b) => b.sinceMs - a.sinceMs).slice(0, MAX_REFUSALS);
  const doc = {
    version: STATE_FILE_VERSION,
    refusals: kept.map((r) => ({
      address: r.address,
      port: r.port,
      host: r.host,
      code: r.code,
      since: new Date(r.sinceMs).toISOString(),
      until: new Date(r.untilMs).toISOString(),
    })),
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}

/** The refusals still in force at `nowMs` (wall clock). */
export function activeRefusals(refusals: readonly Refusal[], nowMs: number): Refusal[] {
  return refusals.filter((r) => r.untilMs > nowMs);
}

/**
 * Adds or renews a refusal: one entry per address and port, the latest kiss wins.
 */
export function addRefusal(refusals: readonly Refusal[], r: Refusal): Refusal[] {
  return [...refusals.filter((x) => !(x.address === r.address && x.port === r.port)), r];
}

/** Reads the state file; a missing file is empty. Throws ClientError ERR_CLIENT_STATE_FILE if unreadable. */
export function readStateFile(path: string): ParsedState {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { refusals: [], problems: [] };
    throw new ClientError("ERR_CLIENT_STATE_FILE", `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseState(text);
}

/**
 * Writes the refusals to `path` atomically, creating its directory. Throws ClientError
 * ERR_CLIENT_STATE_FILE when it cannot.
 */
export function writeStateFile(path: string, refusals: readonly Refusal[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, serializeState(refusals), { mode: 0o644 });
    renameSync(tmp, path);
  } catch (err) {
    throw new ClientError("ERR_CLIENT_STATE_FILE", `cannot write ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Where `ntpshield sync` keeps the file by default: /var/lib/ntpshield/client-state.json for root,
 * else $XDG_STATE_HOME/ntpshield/client-state.json (XDG_STATE_HOME defaults to ~/.local/state).
 */
export function defaultStatePath(
  env: NodeJS.ProcessEnv = process.env,
  uid = process.getuid?.() ?? -1,
): string {
  if (uid === 0) return "/var/lib/ntpshield/client-state.json";
  const base = env["XDG_STATE_HOME"] || join(env["HOME"] || homedir(), ".local", "state");
  return join(base, "ntpshield", "client-state.json");
}
