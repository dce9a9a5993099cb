import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  applyOverrides,
  type Config,
  ConfigError,
  changedKeys,
  configKeys,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  resolveThreads,
} from "../../src/config/index.ts";

const ROOT = join(import.meta.dirname, "..", "..");

/** Runs fn, which must throw a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a ConfigError, nothing was thrown");
}

describe("defaults", () => {
  test("an empty file gives every default", () => {
    const expected = {
      server: {
        listen: ["127.0.0.1:11123"],
        threads: 0,
        user: "",
        answerSymmetric: true,
        io: "auto",
        recvBuffer: 4 * 1024 * 1024,
      },
      clock: {
        stratum: 10,
        refid: "LOCL",
        rootDelay: 0,
        rootDispersion: 0,
        precision: 0,
        upstream: [],
        poll: 64,
        holdTime: 1800,
        correctOffset: false,
      },
      mru: {
        maxEntries: 100_000,
        maxMemory: 64 * 1024 * 1024,
        maxAge: 64,
        admitProbability: 0.5,
        ipv4Prefix: 32,
        ipv6Prefix: 64,
      },
      callgap: {
        enabled: true,
        mode: "rules",
        minimum: 2,
        tolerance: 0.5,
        average: 5,
        burst: 8,
        fast: 3,
        fastQuiet: 60,
        leak: 2,
        interval: 8,
      },
      overload: {
        enabled: true,
        redline: 0,
        mouseInterval: 16,
        periodMin: 4,
        periodMax: 32,
        protectIntervals: 4,
        protectMax: 10800,
      },
      kod: { enabled: true, maxRate: 100 },
      blocklist: {
        enabled: false,
        path: "ntpshield-blocklist.db",
        afterKods: 10,
        duration: 0,
        redis: "",
        redisKey: "ntpshield:blocklist",
      },
      acl: { default: ["limited", "kod"], rule: [] },
      http: {
        enabled: true,
        listen: "127.0.0.1:11124",
        maxConnections: 128,
        maxConnectionsPerAddress: 8,
        headerTimeout: 5,
        idleTimeout: 2,
      },
      control: { allow: ["127.0.0.1", "::1"] },
      names: {
        rule: [],
        default: "allow",
        resolver: [],
        pending: "serve",
        ttl: 3600,
        negativeTtl: 300,
        maxConcurrent: 16,
        maxRate: 20,
        cacheSize: 65536,
        timeout: 2,
      },
      fleet: { peers: [], forwardShare: 0, forwardWithheld: false, redirectShare: 0 },
      nts: {
        enabled: false,
        listen: "127.0.0.1:11460",
        certificate: "",
        key: "",
        cookies: 8,
        server: "",
        port: 0,
        keyFile: "",
        rotate: 86400,
        keep: 604800,
        maxConnections: 256,
        handshakeTimeout: 5,
        maxRecord: 1024,
        maxMessage: 4096,
        shedToFleet: false,
      },
      log: { level: "info" },
      broadcast: { interval: 64, destination: [] },
      manycast: { group: [], interface: "" },
    };
    assert.deepEqual(parseConfig(""), expected);
    assert.deepEqual(defaultConfig(), expected);
    assert.deepEqual(parseConfig("[server]\n[clock]\n[log]\n"), expected);
  });

  test("a partial section keeps the defaults of its other keys", () => {
    const c = parseConfig("[clock]\nstratum = 3\n");
    assert.equal(c.clock.stratum, 3);
    assert.equal(c.clock.refid, "LOCL");
    assert.equal(c.clock.holdTime, 1800);
    assert.deepEqual(c.server, defaultConfig().server);
  });
});

/**
 * Every key: a valid non-default value (TOML text) and what it becomes, a value of the wrong type, and
 * one of the right type but out of range. The first test checks this table covers the whole schema.
 */
interface Row {
  key: string;
  valid: string;
  value: unknown;
  wrongType: string;
  outOfRange: string;
  reason: string;
}
const ROWS: Row[] = [
  {
    key: "server.listen",
    valid: '["0.0.0.0:123", "[::]:123"]',
    value: ["0.0.0.0:123", "[::]:123"],
    wrongType: '"0.0.0.0:123"',
    outOfRange: '["0.0.0.0:65536"]',
    reason: "server.listen[0]: port must be a number from 1 to 65535",
  },
  {
    key: "server.threads",
    valid: "4",
    value: 4,
    wrongType: '"4"',
    outOfRange: "257",
    reason: "server.threads: must be an integer from 0 to 256, got 257",
  },
  {
    key: "server.user",
    valid: '"ntpshield"',
    value: "ntpshield",
    wrongType: "0",
    outOfRange: '"no spaces allowed"',
    reason: 'server.user: must be a user name (or empty), got "no spaces allowed"',
  },
  {
    key: "server.answer-symmetric",
    valid: "false",
    value: false,
    wrongType: '"yes"',
    outOfRange: "1",
    reason: "server.answer-symmetric: must be true or false, got 1",
  },
  {
    key: "server.io",
    valid: '"dgram"',
    value: "dgram",
    wrongType: "1",
    outOfRange: '"epoll"',
    reason: 'server.io: must be one of "auto", "native", "dgram", got "epoll"',
  },
  {
    key: "server.recv-buffer",
    valid: '"16MiB"',
    value: 16 * 1024 * 1024,
    wrongType: "true",
    outOfRange: "1000",
    reason: "server.recv-buffer: must be a size from 64 KiB to 1 GiB",
  },
  {
    key: "clock.stratum",
    valid: "2",
    value: 2,
    wrongType: '"2"',
    outOfRange: "20",
    reason: "clock.stratum: must be an integer from 1 to 15, got 20",
  },
  {
    key: "clock.refid",
    valid: '"GPS"',
    value: "GPS",
    wrongType: "1",
    outOfRange: '"TOOLONG"',
    reason: 'clock.refid: must be 1 to 4 ASCII characters or an IPv4 address, got "TOOLONG"',
  },
  {
    key: "clock.root-delay",
    valid: "0.25",
    value: 0.25,
    wrongType: '"0.25"',
    outOfRange: "-0.5",
    reason: "clock.root-delay: must be a number of seconds from 0 to 65535, got -0.5",
  },
  {
    key: "clock.root-dispersion",
    valid: "1",
    value: 1,
    wrongType: "true",
    outOfRange: "65536",
    reason: "clock.root-dispersion: must be a number of seconds from 0 to 65535, got 65536",
  },
  {
    key: "clock.precision",
    valid: "-20",
    value: -20,
    wrongType: "-20.5",
    outOfRange: "-33",
    reason: "clock.precision: must be an integer from -32 to 0, got -33",
  },
  {
    key: "clock.upstream",
    valid: '["time.example.org", "192.0.2.1:1123"]',
    value: ["time.example.org:123", "192.0.2.1:1123"],
    wrongType: '"time.example.org"',
    outOfRange: '["192.0.2.1:0"]',
    reason: 'clock.upstream[0]: port must be a number from 1 to 65535, got "192.0.2.1:0"',
  },
  {
    key: "clock.poll",
    valid: '"16m"',
    value: 960,
    wrongType: "[64]",
    outOfRange: "32",
    reason: "clock.poll: must be a duration from 64 to 1024 seconds",
  },
  {
    key: "clock.hold-time",
    valid: "3600",
    value: 3600,
    wrongType: "false",
    outOfRange: '"2d"',
    reason:
      'clock.hold-time: must be a duration from 16 to 86400 seconds (a number of seconds, or a string like "15m"), got "2d"',
  },
  {
    key: "clock.correct-offset",
    valid: "true",
    value: true,
    wrongType: '"true"',
    outOfRange: "0",
    reason: "clock.correct-offset: must be true or false, got 0",
  },
  {
    key: "mru.max-entries",
    valid: "1200",
    value: 1200,
    wrongType: '"1200"',
    outOfRange: "0",
    reason: "mru.max-entries: must be an integer from 1 to 268435456, got 0",
  },
  {
    key: "mru.max-memory",
    valid: '"200MB"',
    value: 200_000_000,
    wrongType: "true",
    outOfRange: '"17GiB"',
    reason:
      'mru.max-memory: must be a size from 64 KiB to 16 GiB (a number of bytes, or a string like "64MiB"',
  },
  {
    key: "mru.max-age",
    valid: '"2m"',
    value: 120,
    wrongType: "[]",
    outOfRange: "-1",
    reason: "mru.max-age: must be a duration from 0 to 86400 seconds",
  },
  {
    key: "mru.admit-probability",
    valid: "0.25",
    value: 0.25,
    wrongType: '"half"',
    outOfRange: "1.5",
    reason: "mru.admit-probability: must be a number from 0 to 1, got 1.5",
  },
  {
    key: "mru.ipv4-prefix",
    valid: "28",
    value: 28,
    wrongType: '"28"',
    outOfRange: "33",
    reason: "mru.ipv4-prefix: must be an integer from 8 to 32, got 33",
  },
  {
    key: "mru.ipv6-prefix",
    valid: "56",
    value: 56,
    wrongType: "56.5",
    outOfRange: "8",
    reason: "mru.ipv6-prefix: must be an integer from 16 to 128, got 8",
  },
  {
    key: "callgap.enabled",
    valid: "false",
    value: false,
    wrongType: '"no"',
    outOfRange: "0",
    reason: "callgap.enabled: must be true or false, got 0",
  },
  {
    key: "callgap.mode",
    valid: '"token-bucket"',
    value: "token-bucket",
    wrongType: "1",
    outOfRange: '"leaky"',
    reason: 'callgap.mode: must be one of "rules", "token-bucket", got "leaky"',
  },
  {
    key: "callgap.minimum",
    valid: "1.5",
    value: 1.5,
    wrongType: "true",
    outOfRange: '"2h"',
    reason: "callgap.minimum: must be a duration from 0 to 3600 seconds",
  },
  {
    key: "callgap.tolerance",
    valid: "0.25",
    value: 0.25,
    wrongType: "true",
    outOfRange: "-1",
    reason: "callgap.tolerance: must be a duration from 0 to 3600 seconds",
  },
  {
    key: "callgap.average",
    valid: '"8s"',
    value: 8,
    wrongType: "false",
    outOfRange: "0",
    reason: "callgap.average: must be a duration from 0.001 to 86400 seconds",
  },
  {
    key: "callgap.burst",
    valid: "4",
    value: 4,
    wrongType: "4.5",
    outOfRange: "0",
    reason: "callgap.burst: must be an integer from 1 to 1000, got 0",
  },
  {
    key: "callgap.fast",
    valid: "5",
    value: 5,
    wrongType: "2.5",
    outOfRange: "101",
    reason: "callgap.fast: must be an integer from 0 to 100, got 101",
  },
  {
    key: "callgap.fast-quiet",
    valid: '"2m"',
    value: 120,
    wrongType: "false",
    outOfRange: "0",
    reason: "callgap.fast-quiet: must be a duration from 1 to 86400 seconds",
  },
  {
    key: "callgap.leak",
    valid: "0",
    value: 0,
    wrongType: '"2"',
    outOfRange: "17",
    reason: "callgap.leak: must be an integer from 0 to 16, got 17",
  },
  {
    key: "callgap.interval",
    valid: "16",
    value: 16,
    wrongType: "[16]",
    outOfRange: "-16",
    reason: "callgap.interval: must be a duration from 0.001 to 86400 seconds",
  },
  {
    key: "overload.enabled",
    valid: "false",
    value: false,
    wrongType: '"no"',
    outOfRange: "0",
    reason: "overload.enabled: must be true or false, got 0",
  },
  {
    key: "overload.redline",
    valid: "20000",
    value: 20000,
    wrongType: '"20k"',
    outOfRange: "-5",
    reason: "overload.redline: must be a number of requests per second from 0 to 100000000, got -5",
  },
  {
    key: "overload.mouse-interval",
    valid: '"2s"',
    value: 2,
    wrongType: "true",
    outOfRange: "0",
    reason: "overload.mouse-interval: must be a duration from 0.001 to 86400 seconds",
  },
  {
    key: "overload.period-min",
    valid: "8",
    value: 8,
    wrongType: "[8]",
    outOfRange: "0.1",
    reason: "overload.period-min: must be a duration from 0.5 to 3600 seconds",
  },
  {
    key: "overload.period-max",
    valid: "60",
    value: 60,
    wrongType: '"soon"',
    outOfRange: "7200",
    reason: "overload.period-max: must be a duration from 0.5 to 3600 seconds",
  },
  {
    key: "overload.protect-intervals",
    valid: "2.5",
    value: 2.5,
    wrongType: '"4"',
    outOfRange: "1001",
    reason: "overload.protect-intervals: must be a number from 0 to 1000, got 1001",
  },
  {
    key: "overload.protect-max",
    valid: '"1h"',
    value: 3600,
    wrongType: "false",
    outOfRange: "-1",
    reason: "overload.protect-max: must be a duration from 0 to 604800 seconds",
  },
  {
    key: "kod.enabled",
    valid: "false",
    value: false,
    wrongType: '"off"',
    outOfRange: "1",
    reason: "kod.enabled: must be true or false, got 1",
  },
  {
    key: "kod.max-rate",
    valid: "10",
    value: 10,
    wrongType: '"10"',
    outOfRange: "-1",
    reason: "kod.max-rate: must be a number of KoDs per second from 0 to 1000000, got -1",
  },
  {
    key: "blocklist.enabled",
    valid: "true",
    value: true,
    wrongType: '"yes"',
    outOfRange: "1",
    reason: "blocklist.enabled: must be true or false, got 1",
  },
  {
    key: "blocklist.path",
    valid: '"/var/lib/ntpshield/blocklist.db"',
    value: "/var/lib/ntpshield/blocklist.db",
    wrongType: "1",
    outOfRange: '""',
    reason: 'blocklist.path: must be a file path, got ""',
  },
  {
    key: "blocklist.after-kods",
    valid: "3",
    value: 3,
    wrongType: '"3"',
    outOfRange: "0",
    reason: "blocklist.after-kods: must be an integer from 1 to 1000000, got 0",
  },
  {
    key: "blocklist.duration",
    valid: '"1d"',
    value: 86400,
    wrongType: "true",
    outOfRange: "-5",
    reason: "blocklist.duration: must be a duration from 0 to 315360000 seconds",
  },
  {
    key: "blocklist.redis",
    valid: '"redis://10.0.0.5:6380/1"',
    value: "redis://10.0.0.5:6380/1",
    wrongType: "6379",
    outOfRange: '"redis://10.0.0.5:70000"',
    reason:
      'blocklist.redis: must be empty (no sharing) or a URL "redis://[user:password@]host[:port][/db]", got "redis://10.0.0.5:70000"',
  },
  {
    key: "blocklist.redis-key",
    valid: '"site-a:blocklist"',
    value: "site-a:blocklist",
    wrongType: "1",
    outOfRange: '"has space"',
    reason:
      'blocklist.redis-key: must be a Redis key prefix (1-100 characters: letters, digits, and . _ : -), got "has space"',
  },
  {
    key: "acl.default",
    valid: '["limited"]',
    value: ["limited"],
    wrongType: '"limited"',
    outOfRange: '["limited", 3]',
    reason: "acl.default[1]: must be a flag name, got 3",
  },
  {
    key: "acl.rule",
    valid: '[{ address = "192.0.2.0/24", flags = ["noserve"] }]',
    value: [{ address: "192.0.2.0/24", flags: ["noserve"] }],
    wrongType: '"192.0.2.0/24"',
    outOfRange: '[{ address = "192.0.2.0/24", flags = [1] }]',
    reason: "acl.rule[0].flags[0]: must be a flag name, got 1",
  },
  {
    key: "http.enabled",
    valid: "false",
    value: false,
    wrongType: '"off"',
    outOfRange: "1",
    reason: "http.enabled: must be true or false, got 1",
  },
  {
    key: "http.listen",
    valid: '"[::]:9100"',
    value: "[::]:9100",
    wrongType: "9100",
    outOfRange: '"127.0.0.1:65536"',
    reason:
      'http.listen: must be an IP address and port (0 = any free port), as "ADDR:PORT" or "[IPv6]:PORT", got "127.0.0.1:65536"',
  },
  {
    key: "http.max-connections",
    valid: "512",
    value: 512,
    wrongType: '"512"',
    outOfRange: "0",
    reason: "http.max-connections: must be an integer from 1 to 65536, got 0",
  },
  {
    key: "http.max-connections-per-address",
    valid: "2",
    value: 2,
    wrongType: "2.5",
    outOfRange: "70000",
    reason: "http.max-connections-per-address: must be an integer from 1 to 65536, got 70000",
  },
  {
    key: "http.header-timeout",
    valid: '"1.5s"',
    value: 1.5,
    wrongType: "[5]",
    outOfRange: "10",
    reason: "http.header-timeout: must be a duration from 0.5 to 5 seconds",
  },
  {
    key: "http.idle-timeout",
    valid: "0.5",
    value: 0.5,
    wrongType: "true",
    outOfRange: '"1m"',
    reason: "http.idle-timeout: must be a duration from 0.1 to 5 seconds",
  },
  {
    key: "control.allow",
    valid: '["10.0.0.0/8", "2001:db8::/32", "::1"]',
    value: ["10.0.0.0/8", "2001:db8::/32", "::1"],
    wrongType: '"127.0.0.1"',
    outOfRange: '["127.0.0.1", "192.0.2.77/24"]',
    reason: "control.allow[1]: host bits are set beyond /24",
  },
  {
    key: "names.rule",
    valid: '[{ suffix = ".mil", action = "allow" }, { suffix = ".", action = "deny" }]',
    value: [
      { suffix: ".mil", action: "allow" },
      { suffix: ".", action: "deny" },
    ],
    wrongType: '".mil"',
    outOfRange: '[{ suffix = "*.mil", action = "allow" }]',
    reason: 'names.rule[0].suffix: must be a domain suffix such as ".mil" or "example.org"',
  },
  {
    key: "names.default",
    valid: '"deny"',
    value: "deny",
    wrongType: "1",
    outOfRange: '"reject"',
    reason: 'names.default: must be one of "allow", "deny", got "reject"',
  },
  {
    key: "names.resolver",
    valid: '["127.0.0.1:5353", "::1"]',
    value: ["127.0.0.1:5353", "[::1]:53"],
    wrongType: '"127.0.0.1:53"',
    outOfRange: '["127.0.0.1:0"]',
    reason: "names.resolver[0]: port must be a number from 1 to 65535",
  },
  {
    key: "names.pending",
    valid: '"drop"',
    value: "drop",
    wrongType: "false",
    outOfRange: '"queue"',
    reason: 'names.pending: must be one of "serve", "drop", got "queue"',
  },
  {
    key: "names.ttl",
    valid: '"2h"',
    value: 7200,
    wrongType: "true",
    outOfRange: '"8d"',
    reason: "names.ttl: must be a duration from 1 to 604800 seconds",
  },
  {
    key: "names.negative-ttl",
    valid: "60",
    value: 60,
    wrongType: "[60]",
    outOfRange: "0",
    reason: "names.negative-ttl: must be a duration from 1 to 86400 seconds",
  },
  {
    key: "names.max-concurrent",
    valid: "4",
    value: 4,
    wrongType: '"4"',
    outOfRange: "257",
    reason: "names.max-concurrent: must be an integer from 1 to 256, got 257",
  },
  {
    key: "names.max-rate",
    valid: "2.5",
    value: 2.5,
    wrongType: '"fast"',
    outOfRange: "0",
    reason: "names.max-rate: must be a number of lookups per second from 0.01 to 100000, got 0",
  },
  {
    key: "names.cache-size",
    valid: "4096",
    value: 4096,
    wrongType: "4096.5",
    outOfRange: "100",
    reason: "names.cache-size: must be an integer from 1024 to 16777216, got 100",
  },
  {
    key: "names.timeout",
    valid: "0.5",
    value: 0.5,
    wrongType: '"soon"',
    outOfRange: "31",
    reason: "names.timeout: must be a duration from 0.1 to 30 seconds",
  },
  {
    key: "fleet.peers",
    valid: '["10.0.0.2:123", "[2001:db8::2]"]',
    value: ["10.0.0.2:123", "[2001:db8::2]:123"],
    wrongType: '"10.0.0.2"',
    outOfRange: '["ntp.example.net"]',
    reason: "fleet.peers[0]: must be an IP address",
  },
  {
    key: "fleet.forward-share",
    valid: "0.25",
    value: 0.25,
    wrongType: '"half"',
    outOfRange: "1.5",
    reason: "fleet.forward-share: must be a number from 0 to 1, got 1.5",
  },
  {
    key: "fleet.forward-withheld",
    valid: "true",
    value: true,
    wrongType: '"yes"',
    outOfRange: "1",
    reason: "fleet.forward-withheld: must be true or false, got 1",
  },
  {
    key: "fleet.redirect-share",
    valid: "1",
    value: 1,
    wrongType: "false",
    outOfRange: "-0.1",
    reason: "fleet.redirect-share: must be a number from 0 to 1, got -0.1",
  },
  {
    key: "nts.enabled",
    valid: "false",
    value: false,
    wrongType: '"yes"',
    outOfRange: "1",
    reason: "nts.enabled: must be true or false, got 1",
  },
  {
    key: "nts.listen",
    valid: '"0.0.0.0:4460"',
    value: "0.0.0.0:4460",
    wrongType: "4460",
    outOfRange: '"127.0.0.1:65536"',
    reason: "nts.listen: must be an IP address and port",
  },
  {
    key: "nts.certificate",
    valid: '"/etc/ntpshield/nts.crt"',
    value: "/etc/ntpshield/nts.crt",
    wrongType: "1",
    outOfRange: '"a\\u0000b"',
    reason: "nts.certificate: must be a file path (or empty)",
  },
  {
    key: "nts.key",
    valid: '"/etc/ntpshield/nts.key"',
    value: "/etc/ntpshield/nts.key",
    wrongType: "[]",
    outOfRange: '"a\\u0000b"',
    reason: "nts.key: must be a file path (or empty)",
  },
  {
    key: "nts.cookies",
    valid: "4",
    value: 4,
    wrongType: '"8"',
    outOfRange: "9",
    reason: "nts.cookies: must be an integer from 1 to 8, got 9",
  },
  {
    key: "nts.server",
    valid: '"ntp2.example.net"',
    value: "ntp2.example.net",
    wrongType: "2",
    outOfRange: '"a b"',
    reason: "nts.server: must be a host name or IP address (or empty)",
  },
  {
    key: "nts.port",
    valid: "10123",
    value: 10123,
    wrongType: '"123"',
    outOfRange: "65536",
    reason: "nts.port: must be an integer from 0 to 65535, got 65536",
  },
  {
    key: "nts.key-file",
    valid: '"/var/lib/ntpshield/nts-keys"',
    value: "/var/lib/ntpshield/nts-keys",
    wrongType: "true",
    outOfRange: '"a\\u0000b"',
    reason: "nts.key-file: must be a file path (or empty)",
  },
  {
    key: "nts.rotate",
    valid: '"12h"',
    value: 43200,
    wrongType: "true",
    outOfRange: '"91d"',
    reason: "nts.rotate: must be a duration from 0 to 7776000 seconds",
  },
  {
    key: "nts.keep",
    valid: '"14d"',
    value: 1209600,
    wrongType: "[1]",
    outOfRange: "-1",
    reason: "nts.keep: must be a duration from 0 to 31536000 seconds",
  },
  {
    key: "nts.max-connections",
    valid: "16",
    value: 16,
    wrongType: '"16"',
    outOfRange: "0",
    reason: "nts.max-connections: must be an integer from 1 to 65536, got 0",
  },
  {
    key: "nts.handshake-timeout",
    valid: "2",
    value: 2,
    wrongType: "false",
    outOfRange: "61",
    reason: "nts.handshake-timeout: must be a duration from 0.1 to 60 seconds",
  },
  {
    key: "nts.max-record",
    valid: "512",
    value: 512,
    wrongType: "512.5",
    outOfRange: "8",
    reason: "nts.max-record: must be an integer from 16 to 65535, got 8",
  },
  {
    key: "nts.max-message",
    valid: "2048",
    value: 2048,
    wrongType: '"2k"',
    outOfRange: "65537",
    reason: "nts.max-message: must be an integer from 64 to 65536, got 65537",
  },
  {
    key: "nts.shed-to-fleet",
    valid: "false",
    value: false,
    wrongType: '"yes"',
    outOfRange: "1",
    reason: "nts.shed-to-fleet: must be true or false, got 1",
  },
  {
    key: "log.level",
    valid: '"debug"',
    value: "debug",
    wrongType: "2",
    outOfRange: '"trace"',
    reason: 'log.level: must be one of "debug", "info", "warn", "error", got "trace"',
  },
  {
    key: "broadcast.interval",
    valid: '"2m"',
    value: 120,
    wrongType: "true",
    outOfRange: "0.5",
    reason: "broadcast.interval: must be a duration from 1 to 65536 seconds",
  },
  {
    key: "broadcast.destination",
    valid: '[{ address = "224.0.1.1", ttl = 4 }, { address = "192.0.2.255", kind = "broadcast" }]',
    value: [
      { address: "224.0.1.1", kind: "multicast", port: 123, ttl: 4, interface: "" },
      { address: "192.0.2.255", kind: "broadcast", port: 123, ttl: 1, interface: "" },
    ],
    wrongType: '"224.0.1.1"',
    outOfRange: '[{ address = "224.0.1.1", ttl = 256 }]',
    reason: "broadcast.destination[0].ttl: must be an integer from 1 to 255, got 256",
  },
  {
    key: "manycast.group",
    valid: '["224.0.1.1", "ff05::101"]',
    value: ["224.0.1.1", "ff05::101"],
    wrongType: '"224.0.1.1"',
    outOfRange: '["ntp.example"]',
    reason: "manycast.group[0]: must be a multicast group",
  },
  {
    key: "manycast.interface",
    valid: '"192.0.2.1"',
    value: "192.0.2.1",
    wrongType: "1",
    outOfRange: '"eth0"',
    reason: "manycast.interface: must be a literal address of this host (or empty)",
  },
];

function doc(key: string, value: string): string {
  const dot = key.indexOf(".");
  return `[${key.slice(0, dot)}]\n${key.slice(dot + 1)} = ${value}\n`;
}

function get(c: Config, key: string): unknown {
  const [section, name] = key.split(".") as [string, string];
  const camel = name.replace(/-([a-z])/g, (_, x: string) => x.toUpperCase());
  return (c as unknown as Record<string, Record<string, unknown>>)[section]![camel];
}

describe("validation of every key", () => {
  test("the table covers every schema key", () => {
    assert.deepEqual(
      ROWS.map((r) => r.key),
      configKeys(),
    );
  });

  for (const r of ROWS) {
    test(`${r.key}: valid, wrong type, out of range`, () => {
      assert.deepEqual(get(parseConfig(doc(r.key, r.valid)), r.key), r.value);

      const wt = configError(() => parseConfig(doc(r.key, r.wrongType)));
      assert.equal(wt.code, "ERR_CONFIG_INVALID");
      assert.equal(wt.problems.length, 1);
      assert.ok(wt.key.startsWith(r.key), `${wt.key} names ${r.key}`);
      assert.match(wt.reason, /^must be .*, got /);
      assert.ok(wt.message.startsWith(`${r.key}`), wt.message);

      const oor = configError(() => parseConfig(doc(r.key, r.outOfRange)));
      assert.equal(oor.code, "ERR_CONFIG_INVALID");
      assert.equal(oor.problems.length, 1);
      assert.ok(oor.key.startsWith(r.key));
      assert.ok(
        oor.message.includes(r.reason),
        `${JSON.stringify(oor.message)} includes ${JSON.stringify(r.reason)}`,
      );
    });
  }

  test("the example message of the brief, word for word", () => {
    const e = configError(() => parseConfig("[clock]\nstratum = 20\n"));
    assert.equal(e.message, "clock.stratum: must be an integer from 1 to 15, got 20");
    assert.equal(e.key, "clock.stratum");
    assert.equal(e.reason, "must be an integer from 1 to 15, got 20");
    assert.deepEqual(e.problems, [{ key: "clock.stratum", reason: e.reason }]);
  });

  test("a source label goes in front of the message", () => {
    const e = configError(() => parseConfig("[clock]\nstratum = 0\n", "/etc/ntpshield.toml"));
    assert.equal(e.message, "/etc/ntpshield.toml: clock.stratum: must be an integer from 1 to 15, got 0");
    assert.equal(e.source, "/etc/ntpshield.toml");
  });

  test("range edges are inclusive", () => {
    for (const [key, lo, hi] of [
      ["clock.stratum", "1", "15"],
      ["server.threads", "0", "256"],
      ["clock.precision", "-32", "0"],
      ["clock.poll", "64", "1024"],
      ["clock.hold-time", "16", "86400"],
      ["clock.root-delay", "0", "65535"],
    ] as const) {
      assert.equal(get(parseConfig(doc(key, lo)), key), Number(lo));
      assert.equal(get(parseConfig(doc(key, hi)), key), Number(hi));
    }
  });

  test("callgap.tolerance is at most callgap.minimum (two keys, one problem naming tolerance)", () => {
    assert.equal(parseConfig("[callgap]\nminimum = 1\ntolerance = 1\n").callgap.tolerance, 1);
    assert.equal(parseConfig("[callgap]\nminimum = 0.25\ntolerance = 0\n").callgap.minimum, 0.25);
    for (const toml of ["[callgap]\ntolerance = 3\n", "[callgap]\nminimum = 0.25\n"]) {
      const e = configError(() => parseConfig(toml));
      assert.equal(e.code, "ERR_CONFIG_INVALID");
      assert.equal(e.problems.length, 1, toml);
      assert.equal(e.key, "callgap.tolerance");
      assert.match(e.reason, /^must be at most callgap\.minimum \(\d+(\.\d+)? s\), got /);
    }
  });

  test("nan and inf are out of every numeric range", () => {
    for (const v of ["nan", "inf", "-inf"]) {
      const e = configError(() => parseConfig(doc("clock.root-delay", v)));
      assert.equal(e.reason, `must be a number of seconds from 0 to 65535, got ${v}`);
    }
  });

  test("an integer key refuses a float, even a whole one: TOML tells 1e3 from 1000", () => {
    const e = configError(() => parseConfig("[callgap]\nburst = 1e3\n"));
    assert.equal(e.message, "callgap.burst: must be an integer from 1 to 1000, got 1000.0 (a float)");
    for (const [text, shown] of [
      ["8.0", "8.0"],
      ["2e0", "2.0"],
      ["-0.0", "-0.0"],
      ["1e300", "1e+300"],
    ] as const) {
      const f = configError(() => parseConfig(doc("server.threads", text)));
      assert.equal(f.reason, `must be an integer from 0 to 256, got ${shown} (a float)`, text);
    }
    // A byte count is an integer too.
    const size = configError(() => parseConfig(doc("server.recv-buffer", "4e6")));
    assert.match(size.reason, /, got 4000000\.0 \(a float\)$/);
    // Integers in every TOML form are still integers; one beyond 2^53 is out of range, digit for digit.
    assert.equal(parseConfig("[callgap]\nburst = 1_000\n").callgap.burst, 1000);
    assert.equal(parseConfig("[callgap]\nburst = 0x10\n").callgap.burst, 16);
    assert.equal(parseConfig("[callgap]\nburst = +8\n").callgap.burst, 8);
    assert.equal(parseConfig("[server]\nrecv-buffer = 4000000\n").server.recvBuffer, 4_000_000);
    assert.equal(
      configError(() => parseConfig(doc("server.threads", "99999999999999999999"))).reason,
      "must be an integer from 0 to 256, got 99999999999999999999",
    );
  });

  test("number and duration keys take a whole float for its value", () => {
    const c = parseConfig(
      "[clock]\nroot-delay = 1e3\npoll = 128.0\n[mru]\nadmit-probability = 1.0\n[callgap]\nminimum = 2.0\n",
    );
    assert.equal(c.clock.rootDelay, 1000);
    assert.equal(c.clock.poll, 128);
    assert.equal(c.mru.admitProbability, 1);
    assert.equal(c.callgap.minimum, 2);
    const e = configError(() => parseConfig(doc("clock.root-delay", "7e4")));
    assert.equal(e.reason, "must be a number of seconds from 0 to 65535, got 70000");
  });

  test("a negative zero is taken as zero, and never kept as -0", () => {
    const c = parseConfig(
      "[callgap]\nminimum = -0.0\ntolerance = -0.0\n[clock]\nroot-delay = -0.0\n" +
        "[blocklist]\nduration = -0.0\n[overload]\nredline = -0.0\n",
    );
    for (const [key, v] of [
      ["callgap.minimum", c.callgap.minimum],
      ["callgap.tolerance", c.callgap.tolerance],
      ["clock.root-delay", c.clock.rootDelay],
      ["blocklist.duration", c.blocklist.duration],
      ["overload.redline", c.overload.redline],
    ] as const) {
      assert.ok(Object.is(v, 0), `${key} is +0, got ${Object.is(v, -0) ? "-0" : v}`);
    }
    // An integer -0 is an integer zero; a flag's -0 is a zero too.
    assert.ok(Object.is(parseConfig(doc("clock.precision", "-0")).clock.precision, 0));
    assert.ok(Object.is(applyOverrides(defaultConfig(), { threads: -0 }).server.threads, 0));
  });

  test("a list of the wrong length says how long it is", () => {
    const list = (n: number, item: (i: number) => string) =>
      `[${Array.from({ length: n }, (_, i) => item(i)).join(", ")}]`;
    for (const [key, text, reason] of [
      [
        "server.listen",
        list(65, (i) => `"127.0.0.${i}:123"`),
        "must have at most 64 items, got an array of 65",
      ],
      ["server.listen", "[]", "must have at least 1 item, got an empty array"],
      ["clock.upstream", list(33, (i) => `"192.0.2.${i}"`), "must have at most 32 items, got an array of 33"],
      ["acl.default", list(17, () => '"kod"'), "must have at most 16 items, got an array of 17"],
      [
        "names.rule",
        list(1001, (i) => `{ suffix = "n${i}.example", action = "deny" }`),
        "must have at most 1000 items, got an array of 1001",
      ],
    ] as const) {
      const e = configError(() => parseConfig(doc(key, text)));
      assert.deepEqual(e.problems, [{ key, reason }]);
    }
    // Not a list at all: what a list must be.
    assert.equal(
      configError(() => parseConfig(doc("clock.upstream", '"192.0.2.1"'))).reason,
      'must be a list of up to 32 "HOST:PORT" strings, got "192.0.2.1"',
    );
  });

  test("durations accept seconds or a unit", () => {
    const cases: [string, number][] = [
      ["100", 100],
      ['"100s"', 100],
      ['"2m"', 120],
      ['"1.5h"', 5400],
      ['"1d"', 86400],
    ];
    for (const [text, seconds] of cases)
      assert.equal(parseConfig(doc("clock.hold-time", text)).clock.holdTime, seconds);
    for (const bad of ['"10 m"', '"m"', '"1w"', '"-5m"', '""']) {
      configError(() => parseConfig(doc("clock.hold-time", bad)));
    }
  });

  test("refid: an IPv4 address or 1-4 printable ASCII characters", () => {
    for (const ok of ["A", "GPS", "LOCL", "192.0.2.1"])
      assert.equal(parseConfig(doc("clock.refid", `"${ok}"`)).clock.refid, ok);
    for (const bad of ["", "A B", "ÄB", "12345"])
      configError(() => parseConfig(doc("clock.refid", JSON.stringify(bad))));
  });

  test("listen takes addresses only; upstream takes names and a default port", () => {
    const e = configError(() => parseConfig(doc("server.listen", '["localhost:123"]')));
    assert.equal(e.key, "server.listen[0]");
    assert.match(e.reason, /must be an IP address, not a name/);
    configError(() => parseConfig(doc("server.listen", '["127.0.0.1"]')));
    configError(() => parseConfig(doc("server.listen", "[]")));
    const c = parseConfig(
      doc("clock.upstream", '["ntp.example", "[2001:db8::1]", "2001:db8::2", "[::ffff:192.0.2.7]"]'),
    );
    assert.deepEqual(c.clock.upstream, [
      "ntp.example:123",
      "[2001:db8::1]:123",
      "[2001:db8::2]:123",
      "192.0.2.7:123",
    ]);
  });

  test("a repeated address is refused", () => {
    const e = configError(() => parseConfig(doc("server.listen", '["[::1]:123", "[0:0::1]:123"]')));
    assert.equal(e.key, "server.listen[1]");
    assert.match(e.reason, /listed more than once/);
  });

  test("a list item of the wrong type is named by index", () => {
    const e = configError(() => parseConfig(doc("clock.upstream", '["a.example", 7]')));
    assert.equal(e.key, "clock.upstream[1]");
    assert.match(e.reason, /, got 7$/);
  });
});

describe("[overload] periods", () => {
  test("period-max below period-min names period-max and both values", () => {
    const e = configError(() => parseConfig("[overload]\nperiod-min = 10\nperiod-max = 5\n"));
    assert.deepEqual(e.problems, [
      { key: "overload.period-max", reason: "must be at least overload.period-min (10), got 5" },
    ]);
    assert.equal(parseConfig("[overload]\nperiod-min = 5\nperiod-max = 5\n").overload.periodMax, 5);
  });
});

describe("unknown keys", () => {
  test("at top level, by name", () => {
    const e = configError(() => parseConfig("verbose = true\n"));
    assert.equal(e.key, "verbose");
    assert.match(e.message, /^verbose: unknown section or key/);
  });

  test("an unknown section", () => {
    const e = configError(() => parseConfig("[monlist]\nenabled = true\n"));
    assert.equal(e.key, "monlist");
    assert.match(
      e.reason,
      /known: server, clock, mru, callgap, overload, kod, blocklist, acl, http, control, names, fleet, nts, log/,
    );
  });

  test("nested, by full path, with the likely intended key", () => {
    const e = configError(() => parseConfig("[clock]\nhold_time = 60\nstratm = 2\nfrobnicate = 1\n"));
    assert.deepEqual(
      e.problems.map((p) => p.key),
      ["clock.hold_time", "clock.stratm", "clock.frobnicate"],
    );
    assert.match(e.problems[0]!.reason, /did you mean "hold-time"\?/);
    assert.match(e.problems[1]!.reason, /did you mean "stratum"\?/);
    assert.match(e.problems[2]!.reason, /clock takes: stratum, refid/);
  });

  test("camelCase and misplaced keys point at the right one", () => {
    const e = configError(() => parseConfig("stratum = 2\n[server]\nanswerSymmetric = false\n"));
    assert.deepEqual(
      e.problems.map((p) => [p.key, p.reason]),
      [
        ["stratum", "unknown section or key; did you mean clock.stratum?"],
        ["server.answerSymmetric", 'unknown key; did you mean "answer-symmetric"?'],
      ],
    );
  });

  test("keys that could confuse a plain object are just unknown", () => {
    const e = configError(() => parseConfig('__proto__ = 1\nconstructor = 2\n[server]\n"toString" = 3\n'));
    assert.deepEqual(
      e.problems.map((p) => p.key),
      ["__proto__", "constructor", "server.toString"],
    );
    assert.equal(({} as Record<string, unknown>)["polluted"], undefined);
  });

  test("a dotted or quoted unknown key is quoted in the path", () => {
    const e = configError(() => parseConfig('[server]\n"a.b" = 1\n'));
    assert.equal(e.key, 'server."a.b"');
  });

  test("a section given as a value", () => {
    const e = configError(() => parseConfig('server = "x"\nlog = [1]\n'));
    assert.deepEqual(
      e.problems.map((p) => [p.key, p.reason]),
      [
        ["server", 'must be a table, got "x"'],
        ["log", "must be a table, got an array"],
      ],
    );
  });
});

test("several problems are reported together", () => {
  const text = [
    "[server]",
    'threads = "many"',
    'listen = ["1.2.3.4:99999"]',
    "colour = 1",
    "[clock]",
    "stratum = 16",
    'refid = ""',
    "[log]",
    'level = "loud"',
  ].join("\n");
  const e = configError(() => parseConfig(text, "x.toml"));
  assert.equal(e.code, "ERR_CONFIG_INVALID");
  assert.deepEqual(
    e.problems.map((p) => p.key),
    ["server.colour", "server.listen[0]", "server.threads", "clock.stratum", "clock.refid", "log.level"],
  );
  assert.equal(e.key, "server.colour");
  assert.match(e.message, /^x\.toml: 6 problems:\n {2}server\.colour: unknown key/);
  for (const p of e.problems) assert.ok(e.message.includes(`  ${p.key}: ${p.reason}`));
});

describe("TOML syntax errors", () => {
  test("report the line and column", () => {
    const e = configError(() => parseConfig('[server]\nthreads = 4\nuser = "ntp\n', "bad.toml"));
    assert.equal(e.code, "ERR_CONFIG_SYNTAX");
    assert.equal(e.line, 3);
    assert.equal(typeof e.column, "number");
    assert.match(e.message, /^bad\.toml: invalid TOML at line 3, column \d+: /);
    // The offending line is quoted after the message.
    assert.ok(e.message.includes('user = "ntp'));
  });

  test("a key defined twice is a syntax error at its second line", () => {
    const e = configError(() => parseConfig("[clock]\nstratum = 2\nstratum = 3\n"));
    assert.equal(e.code, "ERR_CONFIG_SYNTAX");
    assert.equal(e.line, 3);
  });

  test("absurd nesting is refused quickly", () => {
    const e = configError(() => parseConfig(`x = ${"[".repeat(5000)}${"]".repeat(5000)}`));
    assert.equal(e.code, "ERR_CONFIG_SYNTAX");
  });
});

describe("the result is deep-frozen", () => {
  test("assignment throws in strict mode at every level", () => {
    const c = parseConfig('[clock]\nupstream = ["a.example"]\n');
    assert.ok(Object.isFrozen(c));
    assert.throws(() => {
      (c as { clock: unknown }).clock = {};
    }, TypeError);
    assert.throws(() => {
      (c.clock as { stratum: number }).stratum = 1;
    }, TypeError);
    assert.throws(() => {
      (c.clock.upstream as string[]).push("b.example:123");
    }, TypeError);
    assert.throws(() => {
      (c.server.listen as string[])[0] = "0.0.0.0:1";
    }, TypeError);
    const d = defaultConfig();
    assert.throws(() => {
      (d.log as { level: string }).level = "debug";
    }, TypeError);
    assert.equal(defaultConfig().log.level, "info");
  });
});

describe("applyOverrides", () => {
  const base = parseConfig('[server]\nlisten = ["0.0.0.0:123"]\nthreads = 2\n[log]\nlevel = "warn"\n');

  test("replaces only what is given and keeps the rest", () => {
    const c = applyOverrides(base, {
      listen: ["127.0.0.1:5123", "[::1]:5123"],
      threads: 8,
      logLevel: "debug",
    });
    assert.deepEqual(c.server.listen, ["127.0.0.1:5123", "[::1]:5123"]);
    assert.equal(c.server.threads, 8);
    assert.equal(c.log.level, "debug");
    assert.equal(c.server.answerSymmetric, true);
    assert.deepEqual(c.clock, base.clock);
    assert.ok(Object.isFrozen(c.server.listen));
    assert.ok(Object.isFrozen(c.server));
    // The base is untouched.
    assert.deepEqual(base.server.listen, ["0.0.0.0:123"]);
    assert.deepEqual(applyOverrides(base, {}), base);
  });

  test("validates with the schema's fields and names the flag", () => {
    const e = configError(() =>
      applyOverrides(base, { listen: ["localhost:1"], threads: 1000, logLevel: "verbose" }),
    );
    assert.deepEqual(
      e.problems.map((p) => p.key),
      ["--listen", "--threads", "--log-level"],
    );
    assert.equal(e.problems[1]!.reason, "must be an integer from 0 to 256, got 1000");
    assert.match(e.message, /^3 problems:\n {2}--listen: must be an IP address, not a name/);
  });

  test("NaN from a non-numeric --threads is refused", () => {
    const e = configError(() => applyOverrides(base, { threads: Number("x") }));
    assert.equal(e.message, "--threads: must be an integer from 0 to 256, got nan");
  });

  test("an empty --listen list is refused", () => {
    assert.equal(configError(() => applyOverrides(base, { listen: [] })).key, "--listen");
  });

  test("--http moves the monitoring endpoint (port 0 = any free port) and turns it on; off turns it off", () => {
    const limits = { maxConnections: 128, maxConnectionsPerAddress: 8, headerTimeout: 5, idleTimeout: 2 };
    const off = parseConfig("[http]\nenabled = false\n");
    const moved = applyOverrides(off, { http: "127.0.0.1:0" });
    assert.deepEqual(moved.http, { enabled: true, listen: "127.0.0.1:0", ...limits });
    assert.deepEqual(applyOverrides(base, { http: "[::1]:9100" }).http, {
      enabled: true,
      listen: "[::1]:9100",
      ...limits,
    });
    assert.deepEqual(applyOverrides(base, { http: "off" }).http, {
      enabled: false,
      listen: "127.0.0.1:11124",
      ...limits,
    });
    // --http moves the socket only: the file's limits stay.
    const limited = parseConfig("[http]\nmax-connections-per-address = 2\nheader-timeout = 1\n");
    assert.deepEqual(applyOverrides(limited, { http: "127.0.0.1:0" }).http, {
      ...limits,
      enabled: true,
      listen: "127.0.0.1:0",
      maxConnectionsPerAddress: 2,
      headerTimeout: 1,
    });
    const e = configError(() => applyOverrides(base, { http: "localhost:80" }));
    assert.equal(e.key, "--http");
    assert.match(e.reason, /^must be an IP address and port/);
  });
});

describe("loadConfigFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "ntpshield-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("reads and validates a file, naming it in errors", () => {
    const good = join(dir, "good.toml");
    writeFileSync(good, "[clock]\nstratum = 4\n");
    assert.equal(loadConfigFile(good).clock.stratum, 4);
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, "[clock]\nstratum = 40\n");
    const e = configError(() => loadConfigFile(bad));
    assert.equal(e.code, "ERR_CONFIG_INVALID");
    assert.equal(e.message, `${bad}: clock.stratum: must be an integer from 1 to 15, got 40`);
  });

  test("a missing file or a directory is ERR_CONFIG_READ", () => {
    const missing = configError(() => loadConfigFile(join(dir, "nope.toml")));
    assert.equal(missing.code, "ERR_CONFIG_READ");
    assert.match(missing.message, /nope\.toml: cannot read the file: ENOENT/);
    assert.equal(configError(() => loadConfigFile(dir)).code, "ERR_CONFIG_READ");
  });

  test("bytes that are not UTF-8 are ERR_CONFIG_READ", () => {
    const f = join(dir, "latin1.toml");
    writeFileSync(f, Buffer.from([0x5b, 0x6c, 0x6f, 0x67, 0x5d, 0x0a, 0x23, 0xe9, 0x0a]));
    assert.equal(configError(() => loadConfigFile(f)).code, "ERR_CONFIG_READ");
  });

  test("a syntax error in a file names the file and line", () => {
    const f = join(dir, "syntax.toml");
    writeFileSync(f, "[server]\n\nthreads = = 2\n");
    const e = configError(() => loadConfigFile(f));
    assert.equal(e.code, "ERR_CONFIG_SYNTAX");
    assert.equal(e.line, 3);
    assert.ok(e.message.startsWith(`${f}: invalid TOML at line 3`));
  });
});

describe("shipped files", () => {
  test("deploy/ntpshield.toml is valid and is a production setup", () => {
    const c = loadConfigFile(join(ROOT, "deploy", "ntpshield.toml"));
    assert.ok(c.server.listen.includes("0.0.0.0:123"));
    assert.ok(c.server.listen.includes("[::]:123"));
    assert.notEqual(c.server.user, "");
  });

  test("docs/configuration.md has a row for every key, in its section's table", () => {
    const md = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");
    const sections = md.split(/\n## /);
    for (const key of configKeys()) {
      const [section, name] = key.split(".") as [string, string];
      const part = sections.find((s) => s.startsWith(`[${section}]`));
      assert.ok(part, `docs has a "## [${section}]" heading`);
      assert.match(part, new RegExp(`\\| \`${name}\` +\\|`), `docs [${section}] table has a row for ${name}`);
    }
  });
});

test("changedKeys lists what differs and whether it needs a restart", () => {
  const a = parseConfig("");
  const b = parseConfig('[server]\nlisten = ["0.0.0.0:123"]\n[clock]\nstratum = 2\n');
  assert.deepEqual(changedKeys(a, b), [
    { key: "server.listen", restart: true },
    { key: "clock.stratum", restart: false },
  ]);
  assert.deepEqual(changedKeys(a, parseConfig("")), []);
});

test("resolveThreads: 0 means one per core", () => {
  assert.equal(resolveThreads(0, 8), 8);
  assert.equal(resolveThreads(3, 8), 3);
  assert.equal(resolveThreads(0, 1000), 256);
  assert.equal(resolveThreads(0, 0), 1);
  assert.ok(resolveThreads(0) >= 1);
});

describe("[nts] cross checks", () => {
  test("NTS on needs a certificate and a key, each named when missing", () => {
    const e = configError(() => parseConfig("[nts]\nenabled = true\n"));
    assert.deepEqual(
      e.problems.map((p) => p.key),
      ["nts.certificate", "nts.key"],
    );
    assert.match(e.problems[0]!.reason, /must name a PEM file when nts.enabled is true/);
    const ok = parseConfig('[nts]\nenabled = true\ncertificate = "c.pem"\nkey = "k.pem"\n');
    assert.equal(ok.nts.enabled, true);
  });

  test("shedding to the fleet needs [fleet] peers to name", () => {
    const e = configError(() => parseConfig("[nts]\nshed-to-fleet = true\n"));
    assert.deepEqual(
      e.problems.map((p) => p.key),
      ["nts.shed-to-fleet"],
    );
    assert.match(e.problems[0]!.reason, /needs \[fleet\] peers/);
    const ok = parseConfig('[nts]\nshed-to-fleet = true\n[fleet]\npeers = ["192.0.2.7"]\n');
    assert.equal(ok.nts.shedToFleet, true);
  });
});
