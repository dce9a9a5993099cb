import { parseIPv4 } from "./address.ts";
import { bool, duration, hostPortList, int, num, oneOf, size, str, strList } from "./fields.ts";
import { type Schema, tableList } from "./walk.ts";

/** RFC 5905 §7.3: a stratum-1 style refid is up to four ASCII characters; a secondary's is an IPv4 address. */
function isRefid(s: string): boolean {
  return parseIPv4(s) !== undefined || /^[\x21-\x7e]{1,4}$/.test(s);
}

/** A POSIX-portable user name (what useradd accepts); empty means "do not drop privileges". */
function isUserName(s: string): boolean {
  return s === "" || /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(s);
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
  // Paper §12: the call-gap, with the paper's numbers (2 s, 5 s) and a start-up burst allowance.
  callgap: {
    enabled: bool({ default: true }),
    mode: oneOf(["rules", "token-bucket"], { default: "rules" }),
    minimum: duration({ min: 0, max: 3600, default: 2 }),
    average: duration({ min: 0.001, max: 86400, default: 5 }),
    burst: int({ min: 1, max: 1000, default: 8 }),
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
  log: {
    level: oneOf(["debug", "info", "warn", "error"], { default: "info" }),
  },
} satisfies Schema;
