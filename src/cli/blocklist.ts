// `ntpshield blocklist list|add|remove`: shows and edits the durable blocklist (paper §11) while the
// server runs or not. The database is in WAL mode, so `list` never waits for the server, and a write waits
// (--wait) for the server's batch to commit. A running server polls the file and applies the change within
// a few seconds (BlocklistStore.watch).

import { parseArgs } from "node:util";
import { CodedError } from "../base/errors.ts";
import { parseDuration } from "../config/fields.ts";
import { ConfigError, loadConfigFile } from "../config/index.ts";
import { BlocklistError, canonicalEntry } from "../defence/blocklist.ts";
import { checkManualEntry } from "../defence/blocklist-input.ts";
import {
  type BlocklistEntry,
  BlocklistStore,
  BlocklistStoreError,
  ownAddresses,
  resolveBlocklistPath,
} from "../server/blocklist/index.ts";

export const BLOCKLIST_USAGE = `usage: ntpshield blocklist list [--json] (--config FILE | --db PATH)
       ntpshield blocklist add ADDR [--reason TEXT] [--duration S] [--create] (--config FILE | --db PATH)
       ntpshield blocklist remove ADDR (--config FILE | --db PATH)

  list        one entry a line: address, reason, added, expiry, hits, source (--json: a JSON array)
  add         block ADDR (IPv4 or IPv6) for --duration (seconds, or "15m", "12h", "7d"; 0 or none = for ever)
  remove      unblock ADDR (an address, or a prefix the server blocked, as list shows it: 2001:db8:1:2::/64)
  --config    the server's configuration file: its [blocklist] path is used
  --db        the blocklist database file itself, instead of --config
  --create    with add: create the database when it does not exist (a server already running does not
              read a file made after it started: restart it, or add over HTTP instead)
  --wait      seconds to wait for a database another process is writing (default 5)`;

/** The [blocklist] section (camelCase), as the configuration schema defines it. */
export interface BlocklistSettings {
  enabled: boolean;
  path: string;
  /** KoDs sent to an address before it is blocked. */
  afterKods: number;
  /** Seconds an automatic entry lasts; 0 = for ever. */
  duration: number;
}

export const BLOCKLIST_DEFAULTS: Readonly<BlocklistSettings> = Object.freeze({
  enabled: false,
  path: "ntpshield-blocklist.db",
  afterKods: 10,
  duration: 0,
});

/** The [blocklist] section of a loaded configuration, or the defaults when the schema has none. */
export function blocklistSettingsOf(config: unknown): BlocklistSettings {
  const section = (config as { blocklist?: Partial<BlocklistSettings> } | null)?.blocklist;
  return { ...BLOCKLIST_DEFAULTS, ...(section ?? {}) };
}

const DEFAULT_REASON = "added by hand";

/** Seconds from "3600", "1.5", "15m", "12h", "7d"; undefined when it is none of those. */
function durationSeconds(text: string): number | undefined {
  if (/^[0-9]{1,12}(\.[0-9]{1,9})?$/.test(text)) return Number(text);
  return parseDuration(text);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** To the second: enough for a person reading a list, and the columns line up. */
function isoSeconds(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

function formatEntry(e: BlocklistEntry, width: number): string {
  const expires = e.expiresMs === null ? "never" : isoSeconds(e.expiresMs);
  return (
    `${e.address.padEnd(width)}  reason=${JSON.stringify(e.reason)}  added=${isoSeconds(e.addedMs)}  ` +
    `expires=${expires}  hits=${e.hits}  source=${e.source}`
  );
}

function jsonEntry(e: BlocklistEntry): Record<string, unknown> {
  return {
    address: e.address,
    reason: e.reason,
    added: iso(e.addedMs),
    updated: iso(e.updatedMs),
    expires: e.expiresMs === null ? null : iso(e.expiresMs),
    hits: e.hits,
    source: e.source,
  };
}

class UsageError extends CodedError<"ERR_BLOCKLIST_USAGE"> {
  constructor(message: string) {
    super("ERR_BLOCKLIST_USAGE", message);
  }
}

interface Where {
  path: string;
  /** Printed to stderr before the command's own output (e.g. the list is not in use). */
  note: string | undefined;
}

function locate(values: { config?: string | undefined; db?: string | undefined }): Where {
  if (values.config !== undefined && values.db !== undefined)
    throw new UsageError("use --config or --db, not both");
  if (values.db !== undefined) {
    if (values.db === "") throw new UsageError("--db needs a file name");
    return { path: resolveBlocklistPath(values.db), note: undefined };
  }
  if (values.config === undefined) throw new UsageError("say which blocklist: --config FILE or --db PATH");
  const settings = blocklistSettingsOf(loadConfigFile(values.config));
  const path = resolveBlocklistPath(settings.path, values.config);
  const note = settings.enabled
    ? undefined
    : `note: ${values.config} has [blocklist] enabled = false: a server with it does not use ${path}`;
  return { path, note };
}

/**
 * The server's listen hosts, for the warning before an operator blocks the server's own address: from
 * --config's [server] listen when given; otherwise the wildcard, every address of this machine.
 */
function ownHosts(values: { config?: string | undefined }): string[] {
  if (values.config !== undefined) {
    try {
      const listen = (loadConfigFile(values.config) as { server?: { listen?: unknown } }).server?.listen;
      if (Array.isArray(listen)) return listen.map((l) => hostOf(String(l)));
    } catch {
      // locate() reports a bad configuration file.
    }
  }
  return ["::"];
}

/** "[::1]:123" -> "::1", "192.0.2.1:123" -> "192.0.2.1", "::1" -> "::1". */
function hostOf(listen: string): string {
  const b = /^\[(.*)\](?::\d+)?$/.exec(listen);
  if (b) return b[1]!;
  const v4 = /^([^:]*):\d+$/.exec(listen);
  return v4 ? v4[1]! : listen;
}

/** Runs `ntpshield blocklist ...`. Exit 0 done, 1 the database failed or the address is not listed, 2 usage. */
export async function blocklistCommand(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const err = (s: string) => process.stderr.write(`ntpshield blocklist: ${s}\n`);
  let store: BlocklistStore | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        db: { type: "string" },
        reason: { type: "string" },
        duration: { type: "string" },
        json: { type: "boolean" },
        create: { type: "boolean" },
        wait: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      out(BLOCKLIST_USAGE);
      return 0;
    }
    const [action, address, ...extra] = positionals;
    const wants = action === "add" || action === "remove" ? 1 : 0;
    if (action !== "list" && action !== "add" && action !== "remove") {
      throw new UsageError(action === undefined ? "say list, add or remove" : `unknown action "${action}"`);
    }
    if (extra.length > 0 || (wants === 1) !== (address !== undefined)) {
      throw new UsageError(wants === 1 ? `${action} takes one address` : "list takes no address");
    }
    if (action !== "add" && (values.reason !== undefined || values.duration !== undefined)) {
      throw new UsageError("--reason and --duration go with add");
    }
    if (action !== "list" && values.json) throw new UsageError("--json goes with list");
    if (action !== "add" && values.create) throw new UsageError("--create goes with add");
    let waitMs = 5000;
    if (values.wait !== undefined) {
      const s = durationSeconds(values.wait);
      if (s === undefined || s > 3600)
        throw new UsageError(`--wait must be 0 to 3600 seconds, got ${JSON.stringify(values.wait)}`);
      waitMs = Math.round(s * 1000);
    }
    // Check the address before touching any file, so a typo never creates a database. An entry is added by
    // address, checked as the HTTP API checks it; removing also takes a prefix, since the server's
    // automatic entries may be prefixes (and any entry an older version let in).
    const manual =
      action === "add"
        ? checkManualEntry(address!, values.reason ?? DEFAULT_REASON, ownAddresses(ownHosts(values)))
        : undefined;
    for (const w of manual?.warnings ?? []) err(`warning: ${w}`);
    const canonical =
      address === undefined ? undefined : manual !== undefined ? manual.address : canonicalEntry(address);
    let expiresMs: number | null = null;
    if (values.duration !== undefined) {
      const s = durationSeconds(values.duration);
      if (s === undefined || s > 100 * 365 * 86400) {
        throw new UsageError(
          `--duration must be seconds (or "15m", "12h", "7d"; 0 = for ever), got ${JSON.stringify(values.duration)}`,
        );
      }
      if (s > 0) expiresMs = Date.now() + Math.round(s * 1000);
    }

    const where = locate(values);
    if (where.note !== undefined) process.stderr.write(`${where.note}\n`);
    store = BlocklistStore.open(where.path, {
      // Never by accident: a file made beside (or instead of) the one a running server holds is one the
      // server never reads, and entries written there would seem to be on the list and are not.
      create: action === "add" && values.create === true,
      busyTimeoutMs: waitMs,
      pruneIntervalMs: 0,
    });

    if (action === "list") {
      const entries = store.list();
      if (values.json) {
        out(
          entries.length === 0
            ? "[]"
            : `[\n${entries.map((e) => JSON.stringify(jsonEntry(e))).join(",\n")}\n]`,
        );
      } else {
        const width = Math.max(0, ...entries.map((e) => e.address.length));
        for (const e of entries) out(formatEntry(e, width));
        if (entries.length === 0 && process.stdout.isTTY) process.stderr.write(`(${where.path} is empty)\n`);
      }
      return 0;
    }
    if (action === "add") {
      const before = store.get(canonical!);
      const live = before !== undefined && (before.expiresMs === null || before.expiresMs > Date.now());
      const e = store.add({
        address: canonical!,
        reason: manual!.reason,
        source: "manual",
        expiresMs,
      });
      const until = e.expiresMs === null ? "for ever" : `until ${isoSeconds(e.expiresMs)}`;
      out(
        `${live ? "updated" : "blocked"} ${e.address} ${until} (${JSON.stringify(e.reason)}) in ${where.path}`,
      );
      return 0;
    }
    if (!store.remove(canonical!)) {
      err(`${canonical} is not on the blocklist ${where.path}`);
      return 1;
    }
    out(`unblocked ${canonical} in ${where.path}`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err(e.message);
      process.stderr.write(`${BLOCKLIST_USAGE}\n`);
      return 2;
    }
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS_")) {
      err((e as Error).message);
      process.stderr.write(`${BLOCKLIST_USAGE}\n`);
      return 2;
    }
    if (e instanceof BlocklistError) {
      err(e.message);
      return 2;
    }
    if (e instanceof ConfigError) {
      const problems = e.problems.length > 0 ? e.problems : [{ key: e.key, reason: e.reason }];
      for (const p of problems)
        process.stderr.write(`${e.source ?? "config"}: ${p.key ? `${p.key}: ` : ""}${p.reason}\n`);
      return 2;
    }
    if (e instanceof BlocklistStoreError) {
      err(e.message);
      return 1;
    }
    throw e;
  } finally {
    if (store !== undefined) closeStore(store, err);
  }
}

/** Closes without throwing out of a finally block: a failure is reported, the exit code already chosen. */
function closeStore(store: BlocklistStore, err: (s: string) => void): void {
  try {
    store.close();
  } catch (e) {
    err(e instanceof Error ? e.message : String(e));
  }
}
