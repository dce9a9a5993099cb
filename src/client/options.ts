// What the client is given: its servers and its options, with their defaults and their checks. Pure.
// The poll timing options and their rules are poll.ts's (PollOptions, resolvePollOptions); the others
// here concern the choice of servers and addresses. No server is built in (paper §3): they come from the
// caller, and without one the client refuses to start.

import { ClientError } from "./errors.ts";
import { type PollOptions, resolvePollOptions } from "./poll.ts";
import { REFUSAL_EXPIRY_S } from "./state-file.ts";

/** A server as configured: a name or a literal address, and a port. */
export interface ServerSpec {
  readonly host: string;
  readonly port: number;
}

export interface ClientOptions extends PollOptions {
  /** Accept a reply with our exact origin timestamp from another address, and switch to it (§8). */
  followRedirects: boolean;
  /** Consecutive failed polls of one address before the name is resolved again and another chosen. */
  reselectAfter: number;
  /** How long a DENY/RSTR is honoured, seconds (default 7 days). */
  refusalExpiry: number;
  /** How many servers the selection keeps polling (default 3). */
  keep: number;
}

export const CLIENT_DEFAULTS = Object.freeze({
  followRedirects: false,
  reselectAfter: 4,
  refusalExpiry: REFUSAL_EXPIRY_S,
  keep: 3,
});

/** Options as used, the poll options among them, and a sentence for each value raised or lowered. */
export interface ResolvedClientOptions {
  options: Readonly<ClientOptions>;
  poll: Readonly<PollOptions>;
  notices: string[];
}

/** At least one server, each with a host and a port 1-65535; else ClientError ERR_CLIENT_INVALID_SERVER. */
export function checkServers(servers: readonly ServerSpec[]): void {
  if (servers.length === 0) throw new ClientError("ERR_CLIENT_INVALID_SERVER", "no server given");
  for (const s of servers) {
    if (typeof s.host !== "string" || s.host.trim() === "") {
      throw new ClientError("ERR_CLIENT_INVALID_SERVER", "a server has an empty host");
    }
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
      throw new ClientError("ERR_CLIENT_INVALID_SERVER", `port of ${s.host} must be 1-65535, got ${s.port}`);
    }
  }
}

/**
 * Fills in defaults: the poll options by resolvePollOptions's rules (clamped, with notices), the others
 * checked. A value that breaks a rule throws ClientError ERR_CLIENT_INVALID_OPTION.
 */
export function resolveClientOptions(options: Partial<ClientOptions>): ResolvedClientOptions {
  const { options: poll, notices } = resolvePollOptions(options);
  const refusalExpiry = options.refusalExpiry ?? CLIENT_DEFAULTS.refusalExpiry;
  if (typeof refusalExpiry !== "number" || !(refusalExpiry > 0)) {
    throw new ClientError("ERR_CLIENT_INVALID_OPTION", `refusalExpiry must be > 0 s, got ${refusalExpiry}`);
  }
  const resolved = Object.freeze({
    ...poll,
    followRedirects: options.followRedirects ?? CLIENT_DEFAULTS.followRedirects,
    reselectAfter: checkInt("reselectAfter", options.reselectAfter ?? CLIENT_DEFAULTS.reselectAfter, 1, 1000),
    refusalExpiry,
    keep: checkInt("keep", options.keep ?? CLIENT_DEFAULTS.keep, 1, 16),
  });
  return { options: resolved, poll, notices };
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ClientError(
      "ERR_CLIENT_INVALID_OPTION",
      `${name} must be an integer ${min}-${max}, got ${String(v)}`,
    );
  }
  return v;
}
