import { CALLGAP_MAX_FAST } from "../defence/callgap.ts";
import { isNameSuffix, NAME_MAX_CACHE, NAME_MAX_CONCURRENT, NAME_MIN_CACHE } from "../defence/names.ts";
import { parseIPv4, tryParseHostPort } from "./address.ts";
import {
  bool,
  type CheckContext,
  duration,
  type Field,
  hostPortList,
  INVALID,
  int,
  isTable,
  num,
  oneOf,
  size,
  str,
  strList,
} from "./fields.ts";
import { type Schema, tableList } from "./walk.ts";

/** RFC 5905 §7.3: a stratum-1 style refid is up to four ASCII characters; a secondary's is an IPv4 address. */
function isRefid(s: string): boolean {
  return parseIPv4(s) !== undefined || /^[\x21-\x7e]{1,4}$/.test(s);
}

/** A POSIX-portable user name (what useradd accepts); empty means "do not drop privileges". */
function isUserName(s: string): boolean {
  return s === "" || /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(s);
}

/** The monitoring endpoint's address: a literal IP address and a port, where 0 asks for any free port. */
function isHttpListen(s: string): boolean {
  // tryParseHostPort wants ports 1-65535; port 0 is checked as port 1 (same syntax, same host rules).
  return tryParseHostPort(s.replace(/:0$/, ":1"), { names: false }).ok;
}

/**
 * `[[names.rule]]`: a list of `{ suffix, action }` tables in which both keys are required (a table's missing
 * key would otherwise take its default, and a rule without a suffix means nothing).
 */
/** One `[[names.rule]]` as validated. */
export interface NameRuleConfig {
  readonly suffix: string;
  readonly action: "allow" | "deny";
}

function nameRuleList(): Field<readonly NameRuleConfig[]> {
  const list = tableList(
    {
      suffix: str({
        default: "",
        expect: 'a domain suffix such as ".mil" or "example.org" (or "." for every name)',
        test: isNameSuffix,
      }),
      action: oneOf(["allow", "deny"], { default: "deny" }),
    },
    { max: 1000 },
  );
  type Rules = typeof list extends Field<infer T> ? T : never;
  const check = (v: unknown, key: string, ctx: CheckContext): Rules | typeof INVALID => {
    const before = ctx.problems.length;
    if (Array.isArray(v)) {
      v.forEach((el, i) => {
        if (!isTable(el)) return;
        for (const k of ["suffix", "action"]) {
          if (!Object.hasOwn(el, k)) {
            ctx.problems.push({
              key: `${ctx.item(key, i)}.${k}`,
              reason: "is missing (every rule needs one)",
            });
          }
        }
      });
    }
    const r = list.check(v, key, ctx);
    return ctx.problems.length > before ? INVALID : r;
  };
  return Object.freeze({ ...list, check });
}

/** The NTP port (RFC 5905 §7.2). */
export const NTP_PORT = 123;

/**
 * Every configuration key, its type, range and default. Later sections ([mru], [callgap], [kod],
 * [blocklist], [acl], [http]) are added here as entries; the walker, the Config type and the
 * docs test follow from this table. Keys are kebab-case.
 */
export const SCHEMA = {
  server: {
    // Port 11123 so that a first run needs no privileges; production sets 123 (deploy/ntpshield.toml).
    listen: hostPortList({ default: ["127.0.0.1:11123"], min: 1, max: 64, names: false, restart: true }),
    threads: int({ min: 0, max: 256, default: 0, restart: true }),
    user: str({ default: "", expect: "a user name (or empty)", test: isUserName, restart: true }),
    "answer-symmetric": bool({ default: true }),
    // How packets are read and written: batched through the native addon when it is built, else node:dgram.
    io: oneOf(["auto", "native", "dgram"], { default: "auto", restart: true }),
    // Room for bursts: at 150,000 requests/s the default 208 KiB socket buffer holds about 3 ms of them.
    "recv-buffer": size({ min: 64 * 1024, max: 1024 ** 3, default: 4 * 1024 ** 2, restart: true }),
  },
  clock: {
    stratum: int({ min: 1, max: 15, default: 10 }),
    refid: str({ default: "LOCL", expect: "1 to 4 ASCII characters or an IPv4 address", test: isRefid }),
    // RFC 5905 §7.3: root delay and dispersion travel in NTP short format (16.16), so at most 65535 s.
    "root-delay": num({ min: 0, max: 65535, default: 0, unit: "seconds" }),
    "root-dispersion": num({ min: 0, max: 65535, default: 0, unit: "seconds" }),
    precision: int({ min: -32, max: 0, default: 0 }),
    upstream: hostPortList({ default: [], max: 32, names: true, defaultPort: NTP_PORT }),
    // §2 of the paper: well-behaved clients poll every 64 to 1,024 s; we are a client of our upstreams.
    poll: duration({ min: 64, max: 1024, default: 64 }),
    "hold-time": duration({ min: 16, max: 86400, default: 1800 }),
    "correct-offset": bool({ default: false }),
  },
  // Paper §5: the MRU list, one record per client address, bounded by entries and by bytes.
  mru: {
    "max-entries": int({ min: 1, max: 1 << 28, default: 100_000, restart: true }),
    "max-memory": size({ min: 64 * 1024, max: 16 * 1024 ** 3, default: 64 * 1024 ** 2, restart: true }),
    "max-age": duration({ min: 0, max: 86400, default: 64, restart: true }),
    "admit-probability": num({ min: 0, max: 1, default: 0.5, restart: true }),
  },
  // Paper §12: the call-gap, with the paper's numbers (2 s, 5 s), a start-up burst allowance (Rule 2) and a
  // measurement burst allowance (both rules). tolerance <= minimum is checked in index.ts (two keys).
  callgap: {
    enabled: bool({ default: true }),
    mode: oneOf(["rules", "token-bucket"], { default: "rules" }),
    minimum: duration({ min: 0, max: 3600, default: 2 }),
    tolerance: duration({ min: 0, max: 3600, default: 0.5 }),
    average: duration({ min: 0.001, max: 86400, default: 5 }),
    burst: int({ min: 1, max: 1000, default: 8 }),
    fast: int({ min: 0, max: CALLGAP_MAX_FAST, default: 3 }),
    "fast-quiet": duration({ min: 1, max: 86400, default: 60 }),
    leak: int({ min: 0, max: 16, default: 2 }),
    interval: duration({ min: 0.001, max: 86400, default: 8 }),
  },
  // Paper §11: kiss-o'-death, itself rate limited.
  kod: {
    enabled: bool({ default: true }),
    "max-rate": num({ min: 0, max: 1_000_000, default: 100, unit: "KoDs per second" }),
  },
  // Paper §11: "shoot the elephants": addresses that ignore KoDs are dropped, persistently.
  blocklist: {
    enabled: bool({ default: false }),
    path: str({
      default: "ntpshield-blocklist.db",
      expect: "a file path",
      test: (p) => p.length > 0 && p.length <= 4096 && !p.includes("\0"),
      restart: true,
    }),
    "after-kods": int({ min: 1, max: 1_000_000, default: 10 }),
    duration: duration({ min: 0, max: 10 * 365 * 86400, default: 0 }),
  },
  // Paper §10: static access lists with ntpd's restriction flags; flags are checked by src/defence/acl.ts.
  acl: {
    default: strList({
      default: ["limited", "kod"],
      max: 16,
      expect: "a flag name",
      test: (f) => f.length < 32,
    }),
    rule: tableList(
      {
        address: str({
          default: "",
          expect: 'an address or prefix ("192.0.2.0/24")',
          test: (a) => a.length > 0,
        }),
        flags: strList({ default: [], max: 16, expect: "a flag name", test: (f) => f.length < 32 }),
      },
      { max: 10_000 },
    ),
  },
  // Monitoring (docs/monitoring.md): /metrics, the JSON API and the dashboard, on loopback unless opened.
  http: {
    enabled: bool({ default: true, restart: true }),
    listen: str({
      default: "127.0.0.1:11124",
      expect: 'an IP address and port (0 = any free port), as "ADDR:PORT" or "[IPv6]:PORT"',
      test: isHttpListen,
      restart: true,
    }),
  },
  // Who may use the control features: HTTP writes (the blocklist) and ntpq's mode 6 (docs/monitoring.md).
  control: {
    allow: strList({
      default: ["127.0.0.1", "::1"],
      max: 1000,
      expect: 'an address or prefix ("192.0.2.0/24")',
      test: (a) => a.length > 0 && a.length <= 64,
    }),
  },
  // Paper §10: dynamic access lists from reverse DNS (docs/defences-names.md). No rule = no lookups at all.
  names: {
    rule: nameRuleList(),
    default: oneOf(["allow", "deny"], { default: "allow" }),
    resolver: hostPortList({ default: [], max: 4, names: false, defaultPort: 53 }),
    pending: oneOf(["serve", "drop"], { default: "serve" }),
    ttl: duration({ min: 1, max: 7 * 86400, default: 3600 }),
    "negative-ttl": duration({ min: 1, max: 86400, default: 300 }),
    "max-concurrent": int({ min: 1, max: NAME_MAX_CONCURRENT, default: 16 }),
    "max-rate": num({ min: 0.01, max: 100_000, default: 20, unit: "lookups per second" }),
    "cache-size": int({ min: NAME_MIN_CACHE, max: NAME_MAX_CACHE, default: 65536, restart: true }),
    timeout: duration({ min: 0.1, max: 30, default: 2 }),
  },
  log: {
    level: oneOf(["debug", "info", "warn", "error"], { default: "info" }),
  },
} satisfies Schema;
