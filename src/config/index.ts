import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parse, TomlError } from "smol-toml";
import { AclError, parseAclRules } from "../defence/acl.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import type { CheckContext, Field } from "./fields.ts";
import { INVALID, tomlNumbers } from "./fields.ts";
import { multicastFindings } from "./multicast.ts";
import { SCHEMA } from "./schema.ts";
import {
  type ConfigChange,
  changedKeys as changedKeysOf,
  deepFreeze,
  defaultsOf,
  fieldPaths,
  fileContext,
  type ValueOf,
  validateTable,
} from "./walk.ts";

export type { HostPort } from "./address.ts";
export { formatHostPort, parseHostPort } from "./address.ts";
export type { ConfigErrorCode, ConfigErrorOptions, ConfigProblem } from "./errors.ts";
export { ConfigError } from "./errors.ts";
export { configJsonSchema, type JsonSchema } from "./json-schema.ts";
export { type MulticastFinding, multicastFindings } from "./multicast.ts";
export { NTP_PORT, SCHEMA } from "./schema.ts";
export type { ConfigChange } from "./walk.ts";

/** The validated, fully defaulted, deep-frozen configuration (camelCase names of the kebab-case keys). */
export type Config = ValueOf<typeof SCHEMA>;

export type LogLevel = Config["log"]["level"];

/** Nesting deeper than this is never a valid ntpshield file; the limit keeps hostile input cheap. */
const MAX_DEPTH = 16;

let defaults: Config | undefined;

export function defaultConfig(): Config {
  defaults ??= deepFreeze(defaultsOf(SCHEMA) as Config);
  return defaults;
}

/** Parses TOML text and validates it against SCHEMA. Throws ConfigError listing every problem. */
export function parseConfig(text: string, source?: string): Config {
  let raw: unknown;
  try {
    // Integers as BigInt: the only way to tell `1000` from `1e3` once parsed (tomlNumbers).
    raw = tomlNumbers(
      parse(String(text), { maxDepth: MAX_DEPTH, unsafeKeyBehaviour: "keep", integersAsBigInt: true }),
    );
  } catch (e) {
    throw syntaxError(e, source);
  }
  const problems: ConfigProblem[] = [];
  const value = validateTable(SCHEMA, raw, "", fileContext(problems));
  if (problems.length === 0) crossCheck(value as Config, problems);
  if (problems.length > 0) throw ConfigError.of(problems, { source });
  return deepFreeze(value as Config);
}

/**
 * Checks that need more than one key, or the meaning of a string: the access list is compiled here, once,
 * so a bad rule names its key before anything is served (and a reload with one leaves the server as it was).
 */
function crossCheck(config: Config, problems: ConfigProblem[]): void {
  try {
    parseAclRules(config.acl.rule, config.acl.default);
  } catch (e) {
    if (e instanceof AclError) problems.push(...e.problems.map((p) => ({ key: p.key, reason: p.reason })));
    else throw e;
  }
  problems.push(...controlAllowProblems(config.control.allow));
  if (config.overload.periodMax < config.overload.periodMin) {
    problems.push({
      key: "overload.period-max",
      reason: `must be at least overload.period-min (${config.overload.periodMin}), got ${config.overload.periodMax}`,
    });
  }
  // The multicast BCP's errors refuse the file; its warnings are for check-config to show (multicast.ts).
  for (const f of multicastFindings(config)) {
    if (f.severity === "error") problems.push({ key: f.key, reason: f.reason });
  }
  if (config.nts.enabled) {
    for (const k of ["certificate", "key"] as const) {
      if (config.nts[k] === "")
        problems.push({ key: `nts.${k}`, reason: "must name a PEM file when nts.enabled is true" });
    }
  }
  if (config.nts.shedToFleet && config.fleet.peers.length === 0) {
    problems.push({ key: "nts.shed-to-fleet", reason: "needs [fleet] peers: the servers to name instead" });
  }
  const gap = config.callgap;
  if (gap.tolerance > gap.minimum) {
    problems.push({
      key: "callgap.tolerance",
      reason: `must be at most callgap.minimum (${gap.minimum} s), got ${gap.tolerance}: lower both together`,
    });
  }
}

/**
 * The problems of a [control] allow list: each entry is an address or prefix as an access rule's address is
 * (the same parser, so "192.0.2.77/24" with host bits set is refused the same way). Keys "control.allow[i]".
 */
export function controlAllowProblems(allow: readonly string[]): ConfigProblem[] {
  try {
    parseAclRules(
      allow.map((address) => ({ address, flags: [] })),
      [],
    );
    return [];
  } catch (e) {
    if (!(e instanceof AclError)) throw e;
    return e.problems.map((p) => ({
      key: p.key.replace(/^acl\.rule\[(\d+)\]\.address$/, "control.allow[$1]"),
      reason: p.reason.replace(/acl\.rule\[(\d+)\]/g, "control.allow[$1]"),
    }));
  }
}

function syntaxError(e: unknown, source: string | undefined): ConfigError {
  if (e instanceof TomlError) {
    // smol-toml's message is "Invalid TOML document: <what>\n\n<lines with a caret>".
    const what = e.message.split("\n")[0]!.replace(/^Invalid TOML document:\s*/, "");
    return new ConfigError("", `invalid TOML at line ${e.line}, column ${e.column}: ${what}`, {
      code: "ERR_CONFIG_SYNTAX",
      source,
      line: e.line,
      column: e.column,
      detail: e.codeblock,
      cause: e,
    });
  }
  // Not expected from the parser, but a config must fail as a ConfigError whatever the input.
  const what = e instanceof Error ? e.message : String(e);
  return new ConfigError("", `invalid TOML: ${what}`, { code: "ERR_CONFIG_SYNTAX", source, cause: e });
}

/** Reads a UTF-8 TOML file and validates it. Throws ConfigError (ERR_CONFIG_READ when unreadable). */
export function loadConfigFile(path: string): Config {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = `cannot read the file: ${code ?? (e instanceof Error ? e.message : String(e))}`;
    throw new ConfigError("", reason, { code: "ERR_CONFIG_READ", source: path, cause: e });
  }
  let text: string;
  try {
    // TOML files are UTF-8 (TOML 1.0 "Spec"); a replacement character would hide a wrong file.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new ConfigError("", "the file is not valid UTF-8", {
      code: "ERR_CONFIG_READ",
      source: path,
      cause: e,
    });
  }
  return parseConfig(text, path);
}

export interface Overrides {
  listen?: string[] | undefined;
  threads?: number | undefined;
  logLevel?: string | undefined;
  /** --http ADDR:PORT (turns the endpoint on there) or "off". */
  http?: string | undefined;
}

/** Command-line flags and the schema field each one replaces. */
const FLAGS = {
  listen: { flag: "--listen", field: SCHEMA.server.listen },
  threads: { flag: "--threads", field: SCHEMA.server.threads },
  logLevel: { flag: "--log-level", field: SCHEMA.log.level },
  http: { flag: "--http", field: SCHEMA.http.listen },
} as const satisfies Record<keyof Overrides, { flag: string; field: Field<unknown> }>;

/**
 * Returns a new frozen Config with command-line values in place of the file's (a given --listen
 * replaces the whole list). Values are checked by the same fields; problems name the flag.
 */
export function applyOverrides(config: Config, o: Overrides): Config {
  const problems: ConfigProblem[] = [];
  const ctx: CheckContext = { problems, item: (key) => key };
  const take = <T>(name: keyof Overrides, field: Field<T>, current: T): T => {
    const v = o[name];
    if (v === undefined) return current;
    const r = field.check(v, FLAGS[name].flag, ctx);
    return r === INVALID ? current : r;
  };
  const listen = take("listen", FLAGS.listen.field, config.server.listen);
  const threads = take("threads", FLAGS.threads.field, config.server.threads);
  const level = take("logLevel", FLAGS.logLevel.field, config.log.level);
  let http = config.http;
  if (o.http === "off") http = { ...http, enabled: false };
  else if (o.http !== undefined)
    http = { ...http, enabled: true, listen: take("http", FLAGS.http.field, http.listen) };
  if (problems.length > 0) throw ConfigError.of(problems);
  return deepFreeze({
    ...config,
    server: { ...config.server, listen, threads },
    http,
    log: { ...config.log, level },
  });
}

/** Every key path the schema defines, e.g. "clock.hold-time" (for docs and `check-config`). */
export function configKeys(): string[] {
  return fieldPaths(SCHEMA);
}

/** Keys that differ between two configs; `restart` marks those a SIGHUP reload cannot apply. */
export function changedKeys(before: Config, after: Config): ConfigChange[] {
  return changedKeysOf(SCHEMA, before, after);
}

/** server.threads resolved: 0 means one worker per available core, capped at the schema's 256. */
export function resolveThreads(threads: number, cores: number = availableParallelism()): number {
  return threads > 0 ? threads : Math.max(1, Math.min(cores, 256));
}
