import { CALLGAP_MAX_FAST } from "../defence/callgap.ts";
import { isNameSuffix, NAME_MAX_CACHE, NAME_MAX_CONCURRENT, NAME_MIN_CACHE } from "../defence/names-rules.ts";
import { parseIPv4, parseIPv6, tryParseHostPort } from "./address.ts";
import { bool, duration, hostPortList, int, num, oneOf, size, str, strList } from "./fields.ts";
import { type Schema, tableList } from "./walk.ts";

/** A dotted-quad IPv4 address as parseIPv4 reads it: four parts 0-255, no leading zeros. */
const IPV4 =
  "(?:(?:0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.){3}(?:0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])";

/** RFC 5905 §7.3: a stratum-1 style refid is up to four ASCII characters; a secondary's is an IPv4 address. */
export const REFID_PATTERN = `^(?:[\\x21-\\x7e]{1,4}|${IPV4})$`;

/** A POSIX-portable user name (what useradd accepts); empty means "do not drop privileges". */
export const USER_NAME_PATTERN = "^(?:[A-Za-z_][A-Za-z0-9_.-]{0,31})?$";

/**
 * The syntax of a [[names.rule]] suffix: labels of letters, digits, `-` and `_`, 1 to 63 each, an optional
 * leading and trailing dot, or "." alone. The length of the whole name (253) needs lookahead, which editors'
 * regular expressions lack, so isNameSuffix (src/defence/names-rules.ts) still has the last word.
 */
export const NAME_SUFFIX_PATTERN = "^(?:\\.|\\.?[A-Za-z0-9_-]{1,63}(?:\\.[A-Za-z0-9_-]{1,63})*\\.?)$";

/** The monitoring endpoint's address: a literal IP address and a port, where 0 asks for any free port. */
function isHttpListen(s: string): boolean {
  // tryParseHostPort wants ports 1-65535; port 0 is checked as port 1 (same syntax, same host rules).
  return tryParseHostPort(s.replace(/:0$/, ":1"), { names: false }).ok;
}

/** A literal IPv4 or IPv6 address (an IPv6 one may carry a %zone, which names the interface). */
function isIpLiteral(s: string): boolean {
  return (
    parseIPv4(s) !== undefined ||
    (s.includes(":") && parseIPv6(s.replace(/%[A-Za-z0-9_.-]{1,15}$/, "")) !== undefined)
  );
}

function isLocalOrEmpty(s: string): boolean {
  return s === "" || isIpLiteral(s);
}

/** The NTP port (RFC 5905 §7.2). */
export const NTP_PORT = 123;

/**
 * Every configuration key: its type, limits, default and one line saying what it does. The walker, the
 * Config type, the JSON Schema (json-schema.ts) and the key tables of docs/configuration.md
 * (scripts/gen-config-docs.ts) all follow from this table. Keys are kebab-case.
 */
export const SCHEMA = {
  server: {
    // Port 11123 so that a first run needs no privileges; production sets 123 (deploy/ntpshield.toml).
    listen: hostPortList({
      default: ["127.0.0.1:11123"],
      min: 1,
      max: 64,
      names: false,
      restart: true,
      description: "Where to answer NTP: literal IP addresses and ports (a server must know what it binds).",
    }),
    threads: int({
      min: 0,
      max: 256,
      default: 0,
      restart: true,
      description: "Worker threads in one process; `0` = one per core (`os.availableParallelism()`).",
    }),
    user: str({
      default: "",
      expect: "a user name (or empty)",
      pattern: USER_NAME_PATTERN,
      restart: true,
      description:
        "When started as root, the account to drop to once the sockets are bound (letters, digits, `_ . -`, " +
        "up to 32); empty = keep the starting user.",
    }),
    "answer-symmetric": bool({
      default: true,
      description:
        "Answer a symmetric-active (mode 1) request from a peer we have no association with by a " +
        "symmetric-passive (mode 2) reply, as chrony does; `false` = ignore mode 1.",
    }),
    // How packets are read and written: batched through the native addon when it is built, else node:dgram.
    io: oneOf(["auto", "native", "dgram"], {
      default: "auto",
      restart: true,
      description:
        "How packets are read and written: `native` = the batched UDP addon, `dgram` = `node:dgram`, " +
        "`auto` = native when the addon loads, else dgram.",
    }),
    // Room for bursts: at 150,000 requests/s the default 208 KiB socket buffer holds about 3 ms of them.
    "recv-buffer": size({
      min: 64 * 1024,
      max: 1024 ** 3,
      default: 4 * 1024 ** 2,
      restart: true,
      description:
        "Bytes of socket receive buffer asked of the kernel (`SO_RCVBUFFORCE` as root, else `SO_RCVBUF` " +
        "capped by `net.core.rmem_max`).",
    }),
  },
  clock: {
    stratum: int({
      min: 1,
      max: 15,
      default: 10,
      description: "Stratum served when no `upstream` is configured (a local-clock server).",
    }),
    refid: str({
      default: "LOCL",
      expect: "1 to 4 ASCII characters or an IPv4 address",
      pattern: REFID_PATTERN,
      description:
        'Reference identifier served when no `upstream` is configured (RFC 5905 §7.3): a code such as "LOCL", ' +
        '"GPS", "PPS", or the IPv4 address of a source. Displays read it by the stratum: text at stratum 1, ' +
        "a dotted quad at 2-15 (as ntpq shows it).",
    }),
    // RFC 5905 §7.3: root delay and dispersion travel in NTP short format (16.16), so at most 65535 s.
    "root-delay": num({
      min: 0,
      max: 65535,
      default: 0,
      unit: "seconds",
      description:
        "Seconds of round-trip delay to the primary reference, served when no `upstream` is configured.",
    }),
    "root-dispersion": num({
      min: 0,
      max: 65535,
      default: 0,
      unit: "seconds",
      description:
        "Seconds of maximum error relative to the primary reference, served when no `upstream` is configured.",
    }),
    precision: int({
      min: -32,
      max: 0,
      default: 0,
      description:
        "Precision of the system clock in log2 seconds, served in every reply (`-20` is about 1 µs); " +
        "`0` = measure it at start.",
    }),
    upstream: hostPortList({
      default: [],
      max: 32,
      names: true,
      defaultPort: NTP_PORT,
      description:
        "Servers to follow as a secondary server, by name (resolved each time) or address; " +
        "empty = a local-clock server.",
    }),
    // §2 of the paper: well-behaved clients poll every 64 to 1,024 s; we are a client of our upstreams.
    poll: duration({
      min: 64,
      max: 1024,
      default: 64,
      description: "Seconds between polls of each upstream.",
    }),
    "hold-time": duration({
      min: 16,
      max: 86400,
      default: 1800,
      description:
        "Seconds the server keeps serving after its last usable upstream sample before it says it is " +
        "unsynchronised; only used with `upstream`.",
    }),
    "correct-offset": bool({
      default: false,
      description:
        "Serve the system clock plus the offset measured against the upstreams, for a clock nothing else " +
        "disciplines; only used with `upstream`.",
    }),
  },
  // Paper §5: the MRU list, one record per client address, bounded by entries and by bytes.
  mru: {
    "max-entries": int({
      min: 1,
      max: 1 << 28,
      default: 100_000,
      restart: true,
      description: "Most client records kept in the MRU list.",
    }),
    "max-memory": size({
      min: 64 * 1024,
      max: 16 * 1024 ** 3,
      default: 64 * 1024 ** 2,
      restart: true,
      description:
        "Bytes the MRU list may take (about 110 a record); the smaller of this and `max-entries` wins.",
    }),
    "max-age": duration({
      min: 0,
      max: 86400,
      default: 64,
      restart: true,
      description:
        "Seconds a record must have been idle before a full list recycles it for a newcomer (ntpd's `mru maxage`).",
    }),
    "admit-probability": num({
      min: 0,
      max: 1,
      default: 0.5,
      restart: true,
      description:
        "Probability that a newcomer is admitted to a full list whose oldest record is younger than `max-age` " +
        "(the paper's sampling).",
    }),
    "ipv4-prefix": int({
      min: 8,
      max: 32,
      default: 32,
      description:
        "IPv4 clients are known by this prefix of their address (record, call-gap, KoD, automatic blocklist " +
        "entry); 32 = each address.",
    }),
    "ipv6-prefix": int({
      min: 16,
      max: 128,
      default: 64,
      description:
        "IPv6 clients are known by this prefix: 64 = one subnet, which one host may own and roam at will; " +
        "128 = each address.",
    }),
  },
  // Paper §12: the call-gap, with the paper's numbers (2 s, 5 s), a start-up burst allowance (Rule 2) and a
  // measurement burst allowance (both rules). tolerance <= minimum is checked in index.ts (two keys).
  callgap: {
    enabled: bool({ default: true, description: "Gap clients that ask too often (paper §12)." }),
    mode: oneOf(["rules", "token-bucket"], {
      default: "rules",
      description:
        "`rules` = the paper's two rules with a burst allowance; `token-bucket` = chrony's `ratelimit` form.",
    }),
    minimum: duration({
      min: 0,
      max: 3600,
      default: 2,
      description:
        "Rule 1: seconds since the same address's previous request under which (less `tolerance`) a request " +
        "is gapped (paper: 2 s).",
    }),
    tolerance: duration({
      min: 0,
      max: 3600,
      default: 0.5,
      description:
        "Rule 1 gaps an interval only below `minimum - tolerance`: iburst's 2 s spacing arrives a little under " +
        "with scheduling jitter or NTPsec's one-second timer; at most `minimum`.",
    }),
    average: duration({
      min: 0.001,
      max: 86400,
      default: 5,
      description:
        "Rule 2: seconds of averaged interval under which an address's requests are gapped; also the least " +
        "time between two KoDs to one client.",
    }),
    burst: int({
      min: 1,
      max: 1000,
      default: 8,
      description:
        "Start-up allowance: requests Rule 2 (the average) lets through before it gaps a client (iburst), " +
        "earned back at one per `average` of quiet; it does not exempt Rule 1. In `token-bucket` mode, the " +
        "bucket's size.",
    }),
    fast: int({
      min: 0,
      max: CALLGAP_MAX_FAST,
      default: 3,
      description:
        "Fast allowance: requests of a measurement burst, its first included, answered whatever their spacing, " +
        "for a client gapped by neither rule since its last quiet period; `0` or `1` = off.",
    }),
    "fast-quiet": duration({
      min: 1,
      max: 86400,
      default: 60,
      description:
        "Silence after which the `fast` allowance is whole again and a gapped client's history is forgotten.",
    }),
    leak: int({
      min: 0,
      max: 16,
      default: 2,
      description: "Answer 1 in 2^`leak` gapped requests anyway; `0` = never.",
    }),
    interval: duration({
      min: 0.001,
      max: 86400,
      default: 8,
      description: "Seconds per token, in `token-bucket` mode only.",
    }),
  },
  // Paper §12 and MISSION part 10: past the redline, mice first, the rest withheld by rotating pools.
  overload: {
    enabled: bool({
      default: true,
      description:
        "Past the redline, serve known mice first, then other known clients, then newcomers; withhold the " +
        "rest by rotating pools of addresses (docs/defences-overload.md).",
    }),
    redline: num({
      min: 0,
      max: 100_000_000,
      default: 0,
      unit: "requests per second",
      description:
        "Requests per second one worker thread can answer; `0` = automatic, measured from kernel receive " +
        "drops (no limit until the worker first drops requests).",
    }),
    "mouse-interval": duration({
      min: 0.001,
      max: 86400,
      default: 16,
      description:
        "A client whose averaged interval is at least this, never gapped, is a mouse: served first past " +
        "the redline, and its MRU record is protected from a flood of newcomers.",
    }),
    "period-min": duration({
      min: 0.5,
      max: 3600,
      default: 4,
      description: "Shortest time a pool of addresses is withheld before the next pools take its turn.",
    }),
    "period-max": duration({
      min: 0.5,
      max: 3600,
      default: 32,
      description: "Longest such time; each period is drawn between `period-min` and this.",
    }),
    "protect-intervals": num({
      min: 0,
      max: 1000,
      default: 4,
      description:
        "A mouse's MRU record is kept from recycling until it has been silent for this many of its own " +
        "averaged intervals (`0` = no protection).",
    }),
    "protect-max": duration({
      min: 0,
      max: 7 * 86400,
      default: 3 * 3600,
      description: "Longest silence for which a mouse's record is protected, whatever its interval.",
    }),
  },
  // Paper §11: kiss-o'-death, itself rate limited.
  kod: {
    enabled: bool({
      default: true,
      description: "Tell a gapped client to slow down with a RATE kiss-o'-death; `false` = drop silently.",
    }),
    "max-rate": num({
      min: 0,
      max: 1_000_000,
      default: 100,
      unit: "KoDs per second",
      description:
        "KoDs sent per second by the whole server; beyond it a gapped request is dropped and counted.",
    }),
  },
  // Paper §11: "shoot the elephants": addresses that ignore KoDs are dropped, persistently.
  blocklist: {
    enabled: bool({
      default: false,
      description:
        "Block addresses that ignore KoDs, and load and keep the list (manual entries need it on too).",
    }),
    path: str({
      default: "ntpshield-blocklist.db",
      expect: "a file path",
      pattern: "^[^\\u0000]{1,4096}$",
      restart: true,
      description:
        "The SQLite database holding the list; a relative path is taken from the configuration file's directory.",
    }),
    "after-kods": int({
      min: 1,
      max: 1_000_000,
      default: 10,
      description: "KoDs sent to an address (while its MRU record lives) after which it is blocked.",
    }),
    duration: duration({
      min: 0,
      max: 10 * 365 * 86400,
      default: 0,
      description: "Seconds an automatic entry lasts; `0` = for ever.",
    }),
    // Paper §7, §11: a fleet shoots an elephant once for all its servers (docs/fleet.md).
    redis: str({
      default: "",
      expect: 'empty (no sharing) or a URL "redis://[user:password@]host[:port][/db]"',
      pattern:
        "^(|redis://([^\\s/@]+@)?(\\[[0-9A-Fa-f:.]{2,45}\\]|[A-Za-z0-9.-]{1,253})(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[0-9]{1,2})?)$",
      restart: true,
      description:
        "Share the list with the other servers of a fleet through this Redis; each keeps its own database as its copy.",
    }),
    "redis-key": str({
      default: "ntpshield:blocklist",
      expect: "a Redis key prefix (1-100 characters: letters, digits, and . _ : -)",
      pattern: "^[A-Za-z0-9._:-]{1,100}$",
      restart: true,
      description: "The prefix of the shared list's keys in Redis: one fleet, one prefix.",
    }),
  },
  // Paper §10: static access lists with ntpd's restriction flags; flags are checked by src/defence/acl.ts.
  acl: {
    default: strList({
      default: ["limited", "kod"],
      max: 16,
      expect: "a flag name",
      pattern: "^[\\s\\S]{0,31}$",
      description: "The flags of every address no rule matches.",
    }),
    rule: tableList(
      {
        address: str({
          default: "",
          expect: 'an address or prefix ("192.0.2.0/24")',
          pattern: "^[\\s\\S]+$",
          description: 'An IPv4 or IPv6 address or prefix: "192.0.2.1", "192.0.2.0/24", "2001:db8::/32".',
        }),
        flags: strList({
          default: [],
          max: 16,
          expect: "a flag name",
          pattern: "^[\\s\\S]{0,31}$",
          description: "The flags of addresses under this prefix; empty = no restriction.",
        }),
      },
      {
        max: 10_000,
        description:
          "Access rules, each an address or prefix with its flags; the longest matching prefix wins.",
      },
    ),
  },
  // Monitoring (docs/monitoring.md): /metrics, the JSON API and the dashboard, on loopback unless opened.
  http: {
    enabled: bool({
      default: true,
      restart: true,
      description: "Serve `/metrics`, the JSON API and the dashboard; `false` = no HTTP socket at all.",
    }),
    listen: str({
      default: "127.0.0.1:11124",
      expect: 'an IP address and port (0 = any free port), as "ADDR:PORT" or "[IPv6]:PORT"',
      test: isHttpListen,
      restart: true,
      description: "Where the monitoring endpoint listens; port 0 takes any free port (logged).",
    }),
    // The endpoint's own limits (docs/monitoring.md, "Limits"): slow or silent clients cannot keep the
    // connection slots, and one address cannot take them all, as nginx and Go's net/http bound theirs.
    "max-connections": int({
      min: 1,
      max: 65_536,
      default: 128,
      description: "Connections the endpoint holds at once; a new one beyond them is closed unanswered.",
    }),
    "max-connections-per-address": int({
      min: 1,
      max: 65_536,
      default: 8,
      description:
        "Connections one client address may hold at once, so that one address cannot take every slot; " +
        "a new one beyond them is closed unanswered.",
    }),
    "header-timeout": duration({
      min: 0.5,
      max: 5,
      default: 5,
      description:
        "Seconds a client has to send a request's whole header, from connecting (or from the first byte " +
        "of a later request on the connection); then it is answered 408 and closed.",
    }),
    "idle-timeout": duration({
      min: 0.1,
      max: 5,
      default: 2,
      description: "Seconds a new connection may stay silent before its first byte; then it is closed.",
    }),
  },
  // Who may use the control features: HTTP writes (the blocklist) and ntpq's mode 6 (docs/monitoring.md).
  control: {
    allow: strList({
      default: ["127.0.0.1", "::1"],
      max: 1000,
      expect: 'an address or prefix ("192.0.2.0/24")',
      pattern: "^[\\s\\S]{1,64}$",
      description:
        "Addresses and prefixes allowed to write to the blocklist over HTTP and to use ntpq's mode 6 queries.",
    }),
  },
  // Paper §10: dynamic access lists from reverse DNS (docs/defences-names.md). No rule = no lookups at all.
  names: {
    rule: tableList(
      {
        suffix: str({
          default: "",
          expect: 'a domain suffix such as ".mil" or "example.org" (or "." for every name)',
          pattern: NAME_SUFFIX_PATTERN,
          test: isNameSuffix,
          description:
            'A domain matched on whole labels, any ASCII case: ".mil" covers `mil` and `army.mil`; "." = every name.',
        }),
        action: oneOf(["allow", "deny"], {
          default: "deny",
          description: "`allow` = on through the other defences; `deny` = dropped silently.",
        }),
      },
      {
        max: 1000,
        required: ["suffix", "action"],
        description:
          "Name rules in order: the first whose suffix covers the address's confirmed name decides; " +
          "empty = no lookups at all.",
      },
    ),
    default: oneOf(["allow", "deny"], {
      default: "allow",
      description: "The verdict for a name no rule covers and for an address without a confirmed name.",
    }),
    resolver: hostPortList({
      default: [],
      max: 4,
      names: false,
      defaultPort: 53,
      description: "DNS resolvers asked, in order; empty = the system's (`/etc/resolv.conf`).",
    }),
    pending: oneOf(["serve", "drop"], {
      default: "serve",
      description:
        "Packets from an address whose lookup has not finished: `serve` = answered meanwhile, " +
        "`drop` = not answered until the name is known.",
    }),
    ttl: duration({
      min: 1,
      max: 7 * 86400,
      default: 3600,
      description: "Seconds a verdict from a confirmed name is kept before the address is looked up again.",
    }),
    "negative-ttl": duration({
      min: 1,
      max: 86400,
      default: 300,
      description: "Seconds a verdict without a confirmed name (no PTR, a forged one, a failure) is kept.",
    }),
    "max-concurrent": int({
      min: 1,
      max: NAME_MAX_CONCURRENT,
      default: 16,
      description: "Lookups in progress at once, for the whole server.",
    }),
    "max-rate": num({
      min: 0.01,
      max: 100_000,
      default: 20,
      unit: "lookups per second",
      description: "New lookups per second for the whole server, with a burst of one second's worth.",
    }),
    "cache-size": int({
      min: NAME_MIN_CACHE,
      max: NAME_MAX_CACHE,
      default: 65536,
      restart: true,
      description:
        "Addresses whose verdict is kept, in one cache for all worker threads (about 41 bytes each).",
    }),
    timeout: duration({
      min: 0.1,
      max: 30,
      default: 2,
      description: "Seconds one lookup (PTR and forward confirmation together) may take.",
    }),
  },
  // Paper §8: active redirection between the servers of a fleet (docs/fleet.md).
  fleet: {
    peers: hostPortList({
      default: [],
      max: 64,
      names: false,
      defaultPort: NTP_PORT,
      restart: true,
      description:
        "The other servers of the fleet (their NTP addresses): where requests are forwarded or redirected, and the only sources whose forwarded requests are taken.",
    }),
    "forward-share": num({
      min: 0,
      max: 1,
      default: 0,
      description:
        "Share of requests forwarded to a peer, which answers the client from its own address (0 = none).",
    }),
    "forward-withheld": bool({
      default: false,
      description: "Forward to a peer the requests overload control withholds, instead of dropping them.",
    }),
    "redirect-share": num({
      min: 0,
      max: 1,
      default: 0,
      description:
        "Share of answered requests whose reply names a peer in the redirection extension field, where the request has room for it.",
    }),
  },
  // Network Time Security (RFC 8915, docs/nts.md): the NTS-KE server over TLS 1.3 and authenticated NTP.
  // Off by default: it needs a certificate, which no default can supply.
  nts: {
    enabled: bool({
      default: false,
      restart: true,
      description: "Serve NTS-KE and answer NTS-authenticated requests; needs `certificate` and `key`.",
    }),
    // An unprivileged loopback port so that `npm start` with NTS on needs no root; production sets 4460.
    listen: str({
      default: "127.0.0.1:11460",
      expect: 'an IP address and port (0 = any free port), as "ADDR:PORT" or "[IPv6]:PORT"',
      test: isHttpListen,
      restart: true,
      description: "Where the NTS-KE server listens (TLS 1.3, ALPN `ntske/1`); the IANA port is 4460.",
    }),
    certificate: str({
      default: "",
      expect: "a file path (or empty)",
      pattern: "^[^\\u0000]{0,4096}$",
      restart: true,
      description:
        "The server's certificate chain, PEM; a relative path is taken from the configuration file's directory.",
    }),
    key: str({
      default: "",
      expect: "a file path (or empty)",
      pattern: "^[^\\u0000]{0,4096}$",
      restart: true,
      description: "The certificate's private key, PEM; a relative path as for `certificate`.",
    }),
    cookies: int({
      min: 1,
      max: 8,
      default: 8,
      description: "Cookies handed out by NTS-KE (RFC 8915 §4: clients expect eight).",
    }),
    server: str({
      default: "",
      expect: "a host name or IP address (or empty)",
      pattern: "^[A-Za-z0-9.:_-]{0,253}$",
      description:
        "NTPv4 Server Negotiation: the server of the fleet clients send their NTP to (RFC 8915 §4.1.7); " +
        "empty = this one.",
    }),
    port: int({
      min: 0,
      max: 65535,
      default: 0,
      description:
        "NTPv4 Port Negotiation (RFC 8915 §4.1.8); `0` = the first `[server] listen` port when it is not 123, " +
        "else none said.",
    }),
    "key-file": str({
      default: "",
      expect: "a file path (or empty)",
      pattern: "^[^\\u0000]{0,4096}$",
      restart: true,
      description:
        "The cookie keys, shared by a fleet so that its servers open each other's cookies; made if missing; " +
        "empty = keys in memory only.",
    }),
    rotate: duration({
      min: 0,
      max: 90 * 86400,
      default: 86400,
      description:
        "Seconds a cookie key seals new cookies before a new one replaces it; `0` = never make keys " +
        "(a fleet member reading the key file another server rotates).",
    }),
    keep: duration({
      min: 0,
      max: 365 * 86400,
      default: 7 * 86400,
      description:
        "Seconds a replaced key still opens cookies (clients holding older ones run NTS-KE again).",
    }),
    "max-connections": int({
      min: 1,
      max: 65_536,
      default: 256,
      description: "NTS-KE connections held at once; a new one beyond them is closed at once.",
    }),
    "handshake-timeout": duration({
      min: 0.1,
      max: 60,
      default: 5,
      description:
        "Seconds a client has to finish the TLS handshake, and as long again to send its whole request.",
    }),
    "max-record": int({
      min: 16,
      max: 65_535,
      default: 1024,
      description: "Longest NTS-KE record body accepted, octets; a longer one is answered Bad Request.",
    }),
    "max-message": int({
      min: 64,
      max: 65_536,
      default: 4096,
      description: "Longest NTS-KE request accepted, octets; a longer one is answered Bad Request.",
    }),
    "shed-to-fleet": bool({
      default: false,
      description:
        "While overload control withholds requests here (past the redline), NTS-KE names a server of " +
        "`[fleet] peers` (the same one for a client each time) instead of this one; they must share `key-file`.",
    }),
  },
  log: {
    level: oneOf(["debug", "info", "warn", "error"], {
      default: "info",
      description: "Least severe message written.",
    }),
  },
  // Paper §9 and RFC 5905 mode 5: the server sends its time to groups or a subnet unasked (docs/multicast.md).
  // The IPv4 multicast BCP's rules are checked on each destination (src/config/multicast.ts).
  broadcast: {
    interval: duration({
      min: 1,
      max: 65536,
      default: 64,
      description: "Seconds between two broadcasts to each destination (RFC 5905's minpoll, 64 s).",
    }),
    destination: tableList(
      {
        address: str({
          default: "",
          expect: 'a literal IPv4 or IPv6 address ("224.0.1.1", "192.0.2.255", "ff05::101")',
          test: isIpLiteral,
          description:
            'A multicast group (224.0.1.1 is NTP\'s; IPv6 ff0X::101) or, with `kind = "broadcast"`, an IPv4 ' +
            "subnet broadcast address.",
        }),
        kind: oneOf(["multicast", "broadcast"], {
          default: "multicast",
          description:
            "`multicast` = a group (the BCP's rules apply); `broadcast` = an IPv4 subnet broadcast.",
        }),
        port: int({ min: 1, max: 65535, default: NTP_PORT, description: "Destination UDP port." }),
        ttl: int({
          min: 1,
          max: 255,
          default: 1,
          description:
            "IPv4 TTL or IPv6 hop limit of the packets: 1 = this subnet; above 32 crosses domain borders (the BCP).",
        }),
        interface: str({
          default: "",
          expect: "a literal address of this host (or empty)",
          test: isLocalOrEmpty,
          description:
            "The local address to send from, which picks the interface and is the source receivers see " +
            '(IPv6: "::%eth0" names the interface); empty = the kernel\'s choice.',
        }),
      },
      {
        max: 64,
        required: ["address"],
        description: "Where broadcasts go, each with its TTL and interface; empty = no broadcasting.",
      },
    ),
  },
  // Paper §9: manycast. A client asks a group; synchronised servers that joined it answer by unicast.
  manycast: {
    group: strList({
      default: [],
      max: 16,
      restart: true,
      expect: 'a multicast group ("224.0.1.1", "ff05::101")',
      test: isIpLiteral,
      description:
        "Groups joined to answer manycast requests on each `server.listen` port; empty = none. Answered only " +
        "while synchronised, never to a multicast or broadcast source.",
    }),
    interface: str({
      default: "",
      expect: "a literal address of this host (or empty)",
      test: isLocalOrEmpty,
      restart: true,
      description:
        'The local address whose interface joins the groups (IPv6: "::%eth0"); empty = the kernel\'s choice.',
    }),
  },
} satisfies Schema;
