// The monitoring endpoint (docs/monitoring.md): what an operator needs to see who is hammering the server
// (paper §5, "finding the elephants") with the tools already in use, on the main thread, over node:http.
//
//   GET  /                 the live dashboard (src/server/dashboard/*: every asset served from here)
//   GET  /metrics          Prometheus text format; ntpd-rs's names where the meaning is the same
//   GET  /api/stats        the counters, the clock, the MRU list's and the KoD limiter's figures (JSON)
//   GET  /api/clients      the MRU list with `ntpq -c mrulist`'s filters and sort orders (JSON)
//   GET  /api/snapshot     the whole MRU list with the clock and counters: the survey's input (snapshot.ts)
//   GET  /api/blocklist    the blocklist (paper §11)
//   POST /api/blocklist    add {address, duration?, reason?}      } only from [control] allow;
//   DELETE /api/blocklist?address=A (or /api/blocklist/A)        } 409 while [blocklist] is disabled
//
// It never slows the NTP path: packets are served by the worker threads, and this runs on the main thread,
// which only reads the workers' shared counters and walks the shared MRU list in chunks under its lock
// (MruList.entries), so a worker waits at most for one chunk.
//
// Safety (a control interface open to the world is how ntpd's monlist became an amplifier):
// - loopback by default ([http] listen); reads are open to whoever can reach the socket;
// - writes only from the [control] allow list (the TCP peer address: unlike UDP, it has completed a
//   handshake, so it cannot be forged off-path), and only when the request could not have been made by a web
//   page of another site through the operator's browser: a JSON body (a cross-site form cannot send one
//   without a CORS preflight, which is never granted), no foreign Origin, and a Host that is an IP address
//   or localhost (a DNS-rebinding page names its own host);
// - bounded: request bodies (4 KiB), headers, connections, and timeouts on every phase of a request.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { VERSION } from "../cli/version.ts";
import { parseDuration } from "../config/fields.ts";
import type { Config } from "../config/index.ts";
import { RES_KOD, RES_LIMITED, restrictionBits } from "../control/mrulist.ts";
import type { CounterSnapshot } from "../core/counters.ts";
import type { Defences } from "../core/defences.ts";
import { REASON_COUNT, REASON_NAMES, REASON_RESPONSE, RESPONSE_SERVED } from "../core/reasons.ts";
import type { ServeState } from "../core/serve-state.ts";
import { parseAddressKey } from "../defence/address-key.ts";
import { BlocklistError, canonicalAddress } from "../defence/blocklist.ts";
import type { MruEntry } from "../defence/mru.ts";
import { NAME_COUNTER_NAMES } from "../defence/names-cache.ts";
import { defaultRestrictionNames, snapshotFromMru } from "../survey/from-mru.ts";
import type { Snapshot } from "../survey/snapshot.ts";
import type { BlocklistEntry, BlocklistStore, BlocklistWrite } from "./blocklist-store.ts";
import { BlocklistStoreError } from "./blocklist-store.ts";
import { compileControlAllow } from "./control.ts";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "./dashboard/assets.ts";
import type { Logger } from "./log.ts";
import { formatAddress, type ListenAddress } from "./messages.ts";
import { ServeError } from "./server.ts";

/** What the endpoint reads from the server (NtpServer has all of it). */
export interface MonitorSource {
  readonly addresses: readonly ListenAddress[];
  readonly threads: number;
  readonly defences: Defences | undefined;
  readonly blocklistStore: BlocklistStore | undefined;
  readonly state: ServeState | undefined;
  stats(): CounterSnapshot;
  blockAddress(write: BlocklistWrite): BlocklistEntry;
  unblockAddress(address: string): boolean;
}

export interface HttpMonitorOptions {
  source: MonitorSource;
  /** [http] listen, [control] allow and [blocklist] enabled are read from it (reconfigure() on SIGHUP). */
  config: Config;
  log: Logger;
  /** When the server started, Unix ms (its counters run from there). */
  startedAtMs: number;
  /** Unix ms; the server's clock (tests may set it). */
  now?: () => number;
}

/** Request bodies beyond this are refused (413): a blocklist write is a few dozen bytes. */
export const MAX_BODY_BYTES = 4096;
const MAX_HEADER_BYTES = 8192;
const MAX_CONNECTIONS = 128;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket idle this long (a slow reader of a large snapshot included) is closed. */
const SOCKET_TIMEOUT_MS = 60_000;
/** GET /api/blocklist returns at most this many entries unless asked for more (limit=). */
const BLOCKLIST_DEFAULT_LIMIT = 1000;

// --- Packet totals: the ntpd-rs families -------------------------------------------------------------

/**
 * Reasons refused because of who sent them: the access list (noserve, noquery, RSTR kisses), the access
 * rules by reverse-DNS name (denied, or the lookup still pending) and the blocklist. ntpd-rs's "denied" is
 * its deny list, the same idea.
 */
const DENIED = new Set([
  "drop_acl_noserve",
  "kiss_rstr",
  "drop_noquery",
  "drop_name_deny",
  "kiss_deny",
  "drop_name_pending",
  "drop_blocklisted",
]);
/** Requests the call-gap refused (paper §12), whether kissed (RATE) or dropped, KoD limiter included. */
const RATE_LIMITED = new Set(["drop_gapped", "kiss_rate", "drop_kod_limited"]);

/** Every packet in exactly one of accepted, denied, rate-limited, ignored: they add up to received. */
export interface PacketTotals {
  received: number;
  /** Answered (time, symmetric, a call-gap leak, a control reply). */
  accepted: number;
  denied: number;
  rateLimited: number;
  /** Not answered for what the packet is: malformed, a mode never answered, access list `ignore`. */
  ignored: number;
  /** KoDs sent, by kiss code. */
  kod: { RATE: number; RSTR: number; DENY: number };
  /** KoDs that were due but withheld by the KoD limiter (per client or server-wide rate). */
  kodLimited: number;
  sendErrors: number;
  socketErrors: number;
  /** Requests the kernel dropped (socket buffer full) before the server read them: not in received. */
  kernelDrops: number;
}

export function packetTotals(c: CounterSnapshot): PacketTotals {
  let accepted = 0;
  let denied = 0;
  let rateLimited = 0;
  let ignored = 0;
  for (let r = 0; r < REASON_COUNT; r++) {
    const name = REASON_NAMES[r]!;
    const n = c.byReason[name] ?? 0;
    if (REASON_RESPONSE[r] === RESPONSE_SERVED) accepted += n;
    else if (DENIED.has(name)) denied += n;
    else if (RATE_LIMITED.has(name)) rateLimited += n;
    else ignored += n;
  }
  return {
    received: c.received,
    accepted,
    denied,
    rateLimited,
    ignored,
    kod: {
      RATE: c.byReason["kiss_rate"] ?? 0,
      RSTR: c.byReason["kiss_rstr"] ?? 0,
      DENY: c.byReason["kiss_deny"] ?? 0,
    },
    kodLimited: c.byReason["drop_kod_limited"] ?? 0,
    sendErrors: c.sendErrors,
    socketErrors: c.socketErrors,
    kernelDrops: c.kernelDrops,
  };
}

// --- The MRU list as ntpq's mrulist shows it -----------------------------------------------------------

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

export class QueryError extends Error {
  readonly code = "ERR_HTTP_QUERY";
}

function flagParam(p: URLSearchParams, name: string): boolean {
  if (!p.has(name)) return false;
  const v = p.get(name)!;
  if (v === "" || v === "1" || v === "true" || v === "yes") return true;
  if (v === "0" || v === "false" || v === "no") return false;
  throw new QueryError(`${name}: expected no value, 1 or 0, got ${JSON.stringify(v)}`);
}

function numberParam(p: URLSearchParams, name: string, fallback: number, integer: boolean): number {
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

/** One row of /api/clients: mrulist's columns, and the record's other fields. Times in Unix seconds. */
export interface ClientRow {
  address: string;
  /** Source port of the last packet (rport). */
  port: number;
  /** Seconds since the last packet. */
  lstint: number;
  /** ntpq's average interval: (last - first) / (count - 1), 0 for one packet. */
  avgint: number;
  /** ntpd's restriction bits from what was done with the last packet (ntpq's rstr, shown in hex). */
  rstr: number;
  /** "K" kissed, "L" rate-limited, "." neither: ntpq's r column. */
  r: "K" | "L" | ".";
  mode: number;
  version: number;
  count: number;
  /** Packets the call-gap refused (ntpq's drop). */
  drop: number;
  kods: number;
  firstSeen: number;
  lastSeen: number;
  /** The MRU list's exponentially averaged interval (what the call-gap's rule 2 reads). */
  avgIntervalEwma: number;
  /** Everything ever applied to this client (flags kept in the record): "limited", "kod". */
  restrictions: string[];
  /** What was done with its last packet (a reason name, src/core/reasons.ts). */
  lastReason: string;
}

export function clientRow(e: MruEntry, nowS: number): ClientRow {
  const rstr = restrictionBits(e.lastReason);
  return {
    address: e.address,
    port: e.port,
    lstint: Math.max(0, nowS - e.lastSeen),
    avgint: e.count > 1 ? (e.lastSeen - e.firstSeen) / (e.count - 1) : 0,
    rstr,
    r: rstr & RES_KOD ? "K" : rstr & RES_LIMITED ? "L" : ".",
    mode: e.mode,
    version: e.version,
    count: e.count,
    drop: e.gapped,
    kods: e.kods,
    firstSeen: e.firstSeen,
    lastSeen: e.lastSeen,
    avgIntervalEwma: e.avgInterval,
    restrictions: defaultRestrictionNames(e.flags),
    lastReason: REASON_NAMES[e.lastReason] ?? String(e.lastReason),
  };
}

/** A text key ordering IPv4 addresses before IPv6 ones, each numerically, as ntpq's sort=addr does. */
function addressSortKey(address: string): string {
  const key = new Uint32Array(4);
  if (!parseAddressKey(address, key)) return address;
  const v4 = key[0] === 0 && key[1] === 0 && key[2] === 0xffff;
  const hex = Array.from(key, (w) => w.toString(16).padStart(8, "0")).join("");
  return (v4 ? "0" : "1") + hex;
}

/** Applies the filters, the sort and the limit, as ntpq would show the rows from the top. */
export function selectClients(rows: readonly ClientRow[], q: ClientQuery): ClientRow[] {
  const res = (q.limited ? RES_LIMITED : 0) | (q.kod ? RES_KOD : 0);
  const kept = rows.filter(
    (c) =>
      (res === 0 || (c.rstr & res) !== 0) &&
      c.count >= q.mincount &&
      c.drop >= q.mindrop &&
      c.lstint <= q.maxlstint &&
      c.lstint >= q.minlstint,
  );
  const sign = q.descending ? -1 : 1;
  switch (q.sort) {
    case "lstint":
      // The list is newest first already; a stable sort keeps ties in that order.
      kept.sort((a, b) => sign * (a.lstint - b.lstint));
      break;
    case "avgint":
      kept.sort((a, b) => sign * (a.avgint - b.avgint));
      break;
    case "count":
      kept.sort((a, b) => sign * (a.count - b.count));
      break;
    case "drop":
      kept.sort((a, b) => sign * (a.drop - b.drop));
      break;
    case "addr": {
      const keys = new Map(kept.map((c) => [c, addressSortKey(c.address)]));
      kept.sort((a, b) => sign * (keys.get(a)! < keys.get(b)! ? -1 : keys.get(a)! > keys.get(b)! ? 1 : 0));
      break;
    }
  }
  return Number.isFinite(q.limit) ? kept.slice(0, q.limit) : kept;
}

// --- Prometheus text format (exposition format 0.0.4) -------------------------------------------------

interface Sample {
  labels?: Record<string, string>;
  value: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

class MetricsText {
  private out: string[] = [];
  add(name: string, type: "counter" | "gauge", help: string, samples: Sample[] | number): void {
    this.out.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    this.out.push(`# TYPE ${name} ${type}`);
    const list = typeof samples === "number" ? [{ value: samples }] : samples;
    for (const s of list) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
            .join(",")}}`
        : "";
      this.out.push(`${name}${labels} ${formatValue(s.value)}`);
    }
  }
  text(): string {
    return `${this.out.join("\n")}\n`;
  }
}

// --- The endpoint --------------------------------------------------------------------------------------

/** An HTTP bind failure in words an operator can act on (compare explainBindError for the NTP sockets). */
export function explainHttpBindError(address: string, code: string, message: string): ServeError {
  const where = `cannot bind the monitoring endpoint ${address} ([http] listen or --http)`;
  switch (code) {
    case "EADDRINUSE":
      return new ServeError(
        "ERR_HTTP_BIND_IN_USE",
        `${where}: the address is in use. Is another ntpshield running? Choose another port, or turn the ` +
          "endpoint off with [http] enabled = false (--http off)",
      );
    case "EACCES":
    case "EPERM":
      return new ServeError(
        "ERR_HTTP_BIND_PRIVILEGED",
        `${where}: the port is privileged: start as root (the endpoint is bound before [server] user drops ` +
          "privileges) or use a port above 1023 (the default is 11124)",
      );
    case "EADDRNOTAVAIL":
      return new ServeError("ERR_HTTP_BIND_NOT_AVAILABLE", `${where}: not an address of this host`);
    default:
      return new ServeError("ERR_HTTP_BIND", `${where}: ${message}`);
  }
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const JSON_TYPE = "application/json; charset=utf-8";
const COMMON_HEADERS: Record<string, string> = {
  "x-content-type-options": "nosniff",
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
};
const PAGE_HEADERS: Record<string, string> = {
  ...COMMON_HEADERS,
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
};

const ASSETS: Record<string, { type: string; body: string }> = {
  "/": { type: "text/html; charset=utf-8", body: DASHBOARD_HTML },
  "/dashboard.js": { type: "text/javascript; charset=utf-8", body: DASHBOARD_JS },
  "/dashboard.css": { type: "text/css; charset=utf-8", body: DASHBOARD_CSS },
};

/** A Host header naming an IP address or localhost (any port): what a DNS-rebinding page cannot send. */
function literalHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9.]+|localhost)(:[0-9]{1,5})?$/.exec(host);
  if (m === null) return false;
  const name = m[1]!;
  if (name === "localhost") return true;
  const bare = name.startsWith("[") ? name.slice(1, -1) : name;
  return parseAddressKey(bare, new Uint32Array(4));
}

export class HttpMonitor {
  private readonly source: MonitorSource;
  private readonly log: Logger;
  private readonly startedAtMs: number;
  private readonly now: () => number;
  private config: Config;
  private allowed: (address: string) => boolean;
  private server: Server | undefined;
  /** [http] listen as configured at start (a reload cannot move the socket). */
  readonly listenSpec: string;
  /** "127.0.0.1:PORT" once listening. */
  address = "";

  constructor(options: HttpMonitorOptions) {
    this.source = options.source;
    this.log = options.log;
    this.startedAtMs = options.startedAtMs;
    this.now = options.now ?? Date.now;
    this.config = options.config;
    this.listenSpec = options.config.http.listen;
    this.allowed = compileControlAllow(options.config.control.allow).allowsAddress;
  }

  /** Applies a reloaded configuration: the control allow list and the blocklist switch take effect now. */
  reconfigure(config: Config): void {
    this.allowed = compileControlAllow(config.control.allow).allowsAddress;
    this.config = config;
  }

  /** Binds [http] listen; resolves with the bound "ADDR:PORT". Throws ServeError (ERR_HTTP_BIND_*). */
  async listen(): Promise<string> {
    const spec = this.listenSpec;
    const m = /^(?:\[(.+)\]|([^:]+)):([0-9]+)$/.exec(spec);
    if (m === null) throw new ServeError("ERR_HTTP_BIND", `[http] listen: not ADDR:PORT: ${spec}`);
    const host = m[1] ?? m[2]!;
    const port = Number(m[3]);
    const server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      },
      (req, res) => this.handle(req, res),
    );
    server.maxConnections = MAX_CONNECTIONS;
    server.maxHeadersCount = 64;
    server.setTimeout(SOCKET_TIMEOUT_MS, (socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(explainHttpBindError(formatAddress(host, port), err.code ?? "", err.message)),
      );
      server.listen({ host, port, exclusive: true, ipv6Only: host.includes(":") }, () => resolve());
    });
    server.on("error", (err) => this.log.error("monitoring endpoint", { error: err }));
    server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== "ECONNRESET")
        socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      else socket.destroy();
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.address = formatAddress(a.address, a.port);
    return this.address;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private nowS(): number {
    return (this.now() + (this.source.state?.offsetMs ?? 0)) / 1000;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        // A body refused unread is not drained: the connection is closed after the answer instead.
        if (err.status === 413) res.setHeader("connection", "close");
        this.sendJson(res, err.status, { error: err.message });
        return;
      }
      this.log.error("monitoring endpoint: request failed", { url: req.url, error: err });
      if (!res.headersSent) this.sendJson(res, 500, { error: "internal error (logged)" });
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://monitor.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";
    const asset = ASSETS[path];
    if (asset !== undefined) {
      if (!read) throw this.methodNotAllowed(res, "GET, HEAD");
      res.writeHead(200, { ...PAGE_HEADERS, "content-type": asset.type });
      res.end(asset.body);
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204, COMMON_HEADERS);
      res.end();
      return;
    }
    if (path === "/api/blocklist" || path.startsWith("/api/blocklist/")) {
      await this.blocklist(req, res, method, url);
      return;
    }
    const get: Record<string, () => void> = {
      "/metrics": () => this.metrics(res),
      "/api/stats": () => this.sendJson(res, 200, this.stats()),
      "/api/clients": () => this.clients(res, url.searchParams),
      "/api/snapshot": () => this.sendJson(res, 200, this.snapshot()),
    };
    const handler = get[path];
    if (handler === undefined) throw new HttpError(404, `no such page: ${path}`);
    if (!read) throw this.methodNotAllowed(res, "GET, HEAD");
    if (this.source.defences === undefined) throw new HttpError(503, "the server is starting");
    handler();
  }

  private methodNotAllowed(res: ServerResponse, allow: string): HttpError {
    res.setHeader("allow", allow);
    return new HttpError(405, `method not allowed; use ${allow}`);
  }

  private sendJson(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      ...COMMON_HEADERS,
      "content-type": JSON_TYPE,
      "content-length": Buffer.byteLength(text),
    });
    res.end(text);
  }

  /** The figures of /api/stats (and, as JSON, of `ntpshield stats` and the dashboard). */
  stats(): Record<string, unknown> {
    const counters = this.source.stats();
    const d = this.source.defences!;
    const state = this.source.state;
    const nowS = this.nowS();
    return {
      version: VERSION,
      server: this.serverName(),
      addresses: this.source.addresses.map((a) => formatAddress(a.host, a.port)),
      threads: this.source.threads,
      takenAt: nowS,
      startedAt: this.startedAtMs / 1000,
      uptime: Math.max(0, this.now() - this.startedAtMs) / 1000,
      clock: state
        ? {
            stratum: state.stratum,
            leap: state.leap,
            refid: refIdDisplay(state.refId),
            rootDelay: state.rootDelay,
            rootDispersion: state.rootDispersion,
            precision: state.precision,
          }
        : null,
      packets: packetTotals(counters),
      responses: counters.byResponse,
      reasons: counters.byReason,
      mru: d.mru.stats(),
      kodLimiter: d.kod.stats(),
      blocklist: this.blocklistSummary(),
    };
  }

  private blocklistSummary(): { enabled: boolean; entries: number } {
    const store = this.source.blocklistStore;
    if (!this.config.blocklist.enabled || store === undefined) return { enabled: false, entries: 0 };
    try {
      return { enabled: true, entries: store.count() };
    } catch (err) {
      this.log.warn("monitoring endpoint: blocklist count failed", { error: err });
      return { enabled: true, entries: Number.NaN };
    }
  }

  private serverName(): string {
    const a = this.source.addresses[0];
    return a ? formatAddress(a.host, a.port) : "ntpshield";
  }

  private metrics(res: ServerResponse): void {
    const c = this.source.stats();
    const t = packetTotals(c);
    const d = this.source.defences!;
    const mru = d.mru.stats();
    const kod = d.kod.stats();
    const state = this.source.state;
    const bl = this.blocklistSummary();
    const m = new MetricsText();
    m.add("ntp_uptime_seconds", "gauge", "Time that the NTP daemon is running.", [
      { labels: { version: VERSION }, value: Math.max(0, this.now() - this.startedAtMs) / 1000 },
    ]);
    if (state) {
      m.add("ntp_system_stratum", "gauge", "Stratum of our clock.", state.stratum);
      m.add("ntp_system_leap_indicator", "gauge", "Leap indicator served (3 = unsynchronised).", state.leap);
      m.add(
        "ntp_system_root_delay_seconds",
        "gauge",
        "Distance to the closest root time source.",
        state.rootDelay,
      );
      m.add(
        "ntp_system_root_dispersion_seconds",
        "gauge",
        "Estimate of how precise our time is.",
        state.rootDispersion,
      );
    }
    m.add("ntp_server_received_packets_total", "counter", "Number of incoming packets.", t.received);
    m.add(
      "ntp_server_accepted_packets_total",
      "counter",
      "Number of packets accepted (answered with the time, or a control reply).",
      t.accepted,
    );
    m.add(
      "ntp_server_denied_packets_total",
      "counter",
      "Number of denied packets (access list noserve/noquery, RSTR kiss-o'-death, name rules, blocklist).",
      t.denied,
    );
    m.add(
      "ntp_server_ignored_packets_total",
      "counter",
      "Number of packets ignored (malformed, a mode not answered, access list ignore).",
      t.ignored,
    );
    m.add(
      "ntp_server_rate_limited_packets_total",
      "counter",
      "Number of rate limited packets (refused by the call-gap, kissed or dropped).",
      t.rateLimited,
    );
    m.add(
      "ntp_server_response_send_errors_total",
      "counter",
      "Number of packets where there was an error responding.",
      t.sendErrors,
    );
    m.add("ntp_server_kod_packets_total", "counter", "Kiss-o'-death packets sent, by kiss code.", [
      { labels: { code: "RATE" }, value: t.kod.RATE },
      { labels: { code: "RSTR" }, value: t.kod.RSTR },
      { labels: { code: "DENY" }, value: t.kod.DENY },
    ]);
    m.add(
      "ntp_server_kod_limited_packets_total",
      "counter",
      "Kiss-o'-death packets due but withheld by the KoD limiter (the request was dropped).",
      t.kodLimited,
    );
    m.add(
      "ntpshield_packets_total",
      "counter",
      "Packets by what was done with them (src/core/reasons.ts); they add up to received.",
      REASON_NAMES.map((reason) => ({ labels: { reason }, value: c.byReason[reason] ?? 0 })),
    );
    m.add("ntpshield_socket_errors_total", "counter", "Errors reported by the NTP sockets.", t.socketErrors);
    m.add(
      "ntpshield_kernel_drops_total",
      "counter",
      "Requests the kernel dropped, the socket's receive buffer full, before the server read them.",
      t.kernelDrops,
    );
    m.add("ntpshield_mru_records", "gauge", "Client records in the MRU list.", mru.size);
    m.add("ntpshield_mru_capacity", "gauge", "Most client records the MRU list holds.", mru.capacity);
    m.add("ntpshield_mru_inserted_total", "counter", "MRU records created in free room.", mru.inserted);
    m.add(
      "ntpshield_mru_evicted_total",
      "counter",
      "MRU records evicted, younger than max-age, for a newcomer admitted by sampling.",
      mru.evicted,
    );
    m.add(
      "ntpshield_mru_recycled_total",
      "counter",
      "MRU records reused because older than max-age.",
      mru.recycled,
    );
    m.add(
      "ntpshield_mru_refused_total",
      "counter",
      "Newcomers refused a record by sampling while the MRU list was full.",
      mru.refused,
    );
    m.add("ntpshield_kod_limiter_total", "counter", "Decisions of the KoD limiter.", [
      { labels: { result: "sent" }, value: kod.sent },
      { labels: { result: "dropped_client" }, value: kod.droppedClient },
      { labels: { result: "dropped_rate" }, value: kod.droppedRate },
    ]);
    m.add(
      "ntpshield_name_rules_total",
      "counter",
      "Reverse-DNS name rules (docs/defences-names.md): verdicts given per packet, lookups queued or refused by the limits, cache evictions.",
      NAME_COUNTER_NAMES.map((event, i) => ({ labels: { event }, value: d.names.counters[i] ?? 0 })),
    );
    m.add(
      "ntpshield_name_cache_entries",
      "gauge",
      "Addresses in the reverse-DNS verdict cache.",
      d.names.size,
    );
    m.add("ntpshield_blocklist_enabled", "gauge", "1 if the blocklist is in use.", bl.enabled ? 1 : 0);
    m.add("ntpshield_blocklist_entries", "gauge", "Addresses on the blocklist (not expired).", bl.entries);
    res.writeHead(200, { ...COMMON_HEADERS, "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    res.end(m.text());
  }

  private clients(res: ServerResponse, params: URLSearchParams): void {
    let q: ClientQuery;
    try {
      q = parseClientQuery(params);
    } catch (err) {
      if (err instanceof QueryError) throw new HttpError(400, err.message);
      throw err;
    }
    const mru = this.source.defences!.mru;
    // Newest first, as the list holds them: with the default order and no filter the walk can stop early.
    const plain =
      q.sort === "lstint" &&
      !q.descending &&
      !q.limited &&
      !q.kod &&
      q.mincount === 0 &&
      q.mindrop === 0 &&
      q.minlstint === 0 &&
      q.maxlstint === Number.POSITIVE_INFINITY;
    const entries = mru.snapshot(plain ? q.limit : Number.POSITIVE_INFINITY);
    const nowS = this.nowS();
    const rows = selectClients(
      entries.map((e) => clientRow(e, nowS)),
      q,
    );
    this.sendJson(res, 200, { now: nowS, size: mru.size, clients: rows });
  }

  /** The survey's input (src/survey/snapshot.ts, format 1). */
  snapshot(): Snapshot {
    const c = this.source.stats();
    return snapshotFromMru(this.source.defences!.mru, {
      server: this.serverName(),
      takenAt: this.nowS(),
      startedAt: this.startedAtMs / 1000,
      counters: {
        received: c.received,
        served: c.byResponse.served,
        kissed: c.byResponse.kissed,
        dropped: c.byResponse.dropped,
      },
    });
  }

  // --- The blocklist ---

  private async blocklist(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    const tail = url.pathname.slice("/api/blocklist".length);
    if (method === "GET" || method === "HEAD") {
      if (tail !== "") throw new HttpError(404, "GET /api/blocklist lists the whole blocklist");
      this.requireBlocklist();
      const limit = numberOr400(url.searchParams, "limit", BLOCKLIST_DEFAULT_LIMIT);
      const entries = this.source.blocklistStore!.list();
      this.sendJson(res, 200, {
        enabled: true,
        count: entries.length,
        entries: entries.slice(0, limit === 0 ? entries.length : limit).map(blocklistJson),
      });
      return;
    }
    if (method !== "POST" && method !== "DELETE") throw this.methodNotAllowed(res, "GET, HEAD, POST, DELETE");
    this.checkWriter(req);
    if (method === "POST") {
      if (tail !== "") throw new HttpError(404, "POST to /api/blocklist itself");
      const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json")
        throw new HttpError(415, "send the entry as JSON (content-type: application/json)");
      const body = await readBody(req);
      this.requireBlocklist();
      const write = parseBlockWrite(body, this.now());
      const entry = this.guard(() => this.source.blockAddress(write));
      this.sendJson(res, 201, blocklistJson(entry));
      return;
    }
    let fromPath = "";
    try {
      if (tail.startsWith("/")) fromPath = decodeURIComponent(tail.slice(1));
    } catch {
      throw new HttpError(400, "the address in the path is not valid percent-encoding");
    }
    const address = fromPath !== "" ? fromPath : (url.searchParams.get("address") ?? "");
    if (address === "") throw new HttpError(400, "say which address: DELETE /api/blocklist?address=ADDR");
    this.requireBlocklist();
    const canonical = this.guard(() => canonicalAddress(address));
    const removed = this.guard(() => this.source.unblockAddress(canonical));
    if (!removed) throw new HttpError(404, `${canonical} is not on the blocklist`);
    this.sendJson(res, 200, { removed: true, address: canonical });
  }

  private requireBlocklist(): void {
    if (!this.config.blocklist.enabled || this.source.blocklistStore === undefined)
      throw new HttpError(409, "the blocklist is disabled ([blocklist] enabled = false)");
  }

  /** Runs a blocklist operation, turning its typed errors into HTTP answers. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BlocklistError) throw new HttpError(400, err.message);
      if (err instanceof ServeError && err.code === "ERR_BLOCKLIST_DISABLED")
        throw new HttpError(409, err.message);
      if (err instanceof BlocklistStoreError) {
        this.log.error("monitoring endpoint: blocklist database", { code: err.code, error: err.message });
        throw new HttpError(503, `the blocklist database failed: ${err.message}`);
      }
      throw err;
    }
  }

  /** Refuses (403) a write from outside [control] allow, or one a web page of another site could make. */
  private checkWriter(req: IncomingMessage): void {
    const peer = req.socket.remoteAddress ?? "";
    if (!this.allowed(peer)) {
      this.log.warn("monitoring endpoint: write refused", { peer, reason: "not in [control] allow" });
      throw new HttpError(403, `${peer} may not change anything here (not in [control] allow)`);
    }
    const host = req.headers.host;
    if (!literalHost(host))
      throw new HttpError(
        403,
        "writes must name the server by IP address or localhost in Host (DNS rebinding)",
      );
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== `http://${host}`)
      throw new HttpError(403, `cross-site write refused (Origin ${origin})`);
  }
}

function numberOr400(p: URLSearchParams, name: string, fallback: number): number {
  try {
    return numberParam(p, name, fallback, true);
  } catch (err) {
    if (err instanceof QueryError) throw new HttpError(400, err.message);
    throw err;
  }
}

/** Reads a request body of at most MAX_BODY_BYTES; 413 beyond (and the connection is closed). */
async function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => new HttpError(413, `a request body is at most ${MAX_BODY_BYTES} bytes`);
  if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw tooLarge(); // (chunked: no length was declared)
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** {address, duration?, reason?}: duration in seconds or "15m"/"12h"/"7d", 0 or absent = for ever. */
export function parseBlockWrite(body: string, nowMs: number): BlocklistWrite {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    throw new HttpError(400, "the body is not JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new HttpError(400, 'expected {"address": "...", "duration": ..., "reason": "..."}');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== "address" && k !== "duration" && k !== "reason")
      throw new HttpError(400, `unknown field ${JSON.stringify(k)}; known: address, duration, reason`);
  }
  if (typeof o["address"] !== "string" || o["address"] === "")
    throw new HttpError(400, "address: expected an IPv4 or IPv6 address");
  let expiresMs: number | null = null;
  if (o["duration"] !== undefined && o["duration"] !== null) {
    const s = parseDuration(o["duration"]);
    if (s === undefined || s < 0 || s > 100 * 365 * 86400)
      throw new HttpError(
        400,
        'duration: expected seconds or a string like "15m", "12h", "7d" (0 = for ever)',
      );
    if (s > 0) expiresMs = nowMs + Math.round(s * 1000);
  }
  const reason = o["reason"] ?? "added over HTTP";
  if (typeof reason !== "string" || reason.length > 200)
    throw new HttpError(400, "reason: expected a string of at most 200 characters");
  let address: string;
  try {
    address = canonicalAddress(o["address"]);
  } catch (err) {
    if (err instanceof BlocklistError) throw new HttpError(400, err.message);
    throw err;
  }
  return { address, reason, source: "manual", expiresMs };
}

function blocklistJson(e: BlocklistEntry): Record<string, unknown> {
  return {
    address: e.address,
    reason: e.reason,
    source: e.source,
    hits: e.hits,
    addedMs: e.addedMs,
    updatedMs: e.updatedMs,
    expiresMs: e.expiresMs,
    added: new Date(e.addedMs).toISOString(),
    expires: e.expiresMs === null ? null : new Date(e.expiresMs).toISOString(),
  };
}

/** A refid for people: four printable ASCII characters as text ("LOCL", "GPS"), else a dotted quad. */
export function refIdDisplay(refId: number): string {
  const r = refId >>> 0;
  const bytes = [r >>> 24, (r >>> 16) & 255, (r >>> 8) & 255, r & 255];
  let text = "";
  let ended = false;
  let ascii = bytes[0]! !== 0;
  for (const b of bytes) {
    if (b === 0) ended = true;
    else if (ended || b < 0x20 || b > 0x7e) ascii = false;
    else text += String.fromCharCode(b);
  }
  return ascii ? text : bytes.join(".");
}
