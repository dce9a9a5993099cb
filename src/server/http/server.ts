// The monitoring endpoint's HTTP server (docs/monitoring.md): what an operator needs to see who is
// hammering the server (paper §5, "finding the elephants") with the tools already in use, on the main
// thread, over node:http.
//
//   GET  /                 the live dashboard (src/server/dashboard/*: every asset served from here)
//   GET  /metrics          Prometheus text format; ntpd-rs's names where the meaning is the same
//   GET  /api/stats        the counters, the clock, the MRU list's and the KoD limiter's figures (JSON)
//   GET  /api/clients      the MRU list with `ntpq -c mrulist`'s filters and sort orders (JSON)
//   GET  /api/snapshot     the whole MRU list with the clock and counters: the survey's input (snapshot.ts)
//   GET  /api/blocklist    the blocklist (paper §11), blocklist-api.ts
//   POST /api/blocklist    add {address, duration?, reason?}      } only from [control] allow;
//   DELETE /api/blocklist?address=A (or /api/blocklist/A)        } 409 while [blocklist] is disabled
//
// It never slows the NTP path: packets are served by the worker threads, and this runs on the main thread,
// which only reads the workers' shared counters and walks the shared MRU list in chunks under its lock
// (MruList.entries), so a worker waits at most for one chunk.
//
// Safety (a control interface open to the world is how ntpd's monlist became an amplifier):
// - loopback by default ([http] listen); reads are open to whoever can reach the socket;
// - writes only from the [control] allow list, and only ones a web page of another site could not have made
//   through the operator's browser (security.ts);
// - bounded: request bodies (4 KiB, body.ts), and here headers, connections, and timeouts on every phase of
//   a request.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { VERSION } from "../../cli/version.ts";
import type { Config } from "../../config/index.ts";
import { refIdDisplay } from "../../protocol/index.ts";
import { snapshotFromMru } from "../../survey/from-mru.ts";
import type { Snapshot } from "../../survey/snapshot.ts";
import { compileControlAllow } from "../control.ts";
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from "../dashboard/assets.ts";
import { ServeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatAddress } from "../messages.ts";
import { addToBlocklist, listBlocklist, removeFromBlocklist } from "./blocklist-api.ts";
import { clientRow, selectClients } from "./clients.ts";
import { type ClientQuery, parseClientQuery, QueryError } from "./clients-query.ts";
import type { MonitorContext, MonitorSource } from "./context.ts";
import { explainHttpBindError, HttpError } from "./errors.ts";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";
import { packetTotals } from "./packet-totals.ts";
import { sendError, sendJson, sendNoContent, sendPage, sendText } from "./reply.ts";

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

const MAX_HEADER_BYTES = 8192;
const MAX_CONNECTIONS = 128;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket idle this long (a slow reader of a large snapshot included) is closed. */
const SOCKET_TIMEOUT_MS = 60_000;

const ASSETS: Record<string, { type: string; body: string }> = {
  "/": { type: "text/html; charset=utf-8", body: DASHBOARD_HTML },
  "/dashboard.js": { type: "text/javascript; charset=utf-8", body: DASHBOARD_JS },
  "/dashboard.css": { type: "text/css; charset=utf-8", body: DASHBOARD_CSS },
};

export class HttpMonitor {
  /** What every handler reads; reconfigure() replaces its configuration. */
  private readonly ctx: MonitorContext;
  private server: Server | undefined;
  /** [http] listen as configured at start (a reload cannot move the socket). */
  readonly listenSpec: string;
  /** "127.0.0.1:PORT" once listening. */
  address = "";

  constructor(options: HttpMonitorOptions) {
    this.ctx = {
      source: options.source,
      log: options.log,
      startedAtMs: options.startedAtMs,
      now: options.now ?? Date.now,
      config: options.config,
      allowed: compileControlAllow(options.config.control.allow).allowsAddress,
    };
    this.listenSpec = options.config.http.listen;
  }

  /** Applies a reloaded configuration: the control allow list and the blocklist switch take effect now. */
  reconfigure(config: Config): void {
    this.ctx.allowed = compileControlAllow(config.control.allow).allowsAddress;
    this.ctx.config = config;
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
    server.on("error", (err) => this.ctx.log.error("monitoring endpoint", { error: err }));
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
    return (this.ctx.now() + (this.ctx.source.state?.offsetMs ?? 0)) / 1000;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://monitor.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";
    const asset = ASSETS[path];
    if (asset !== undefined) {
      if (!read) throw this.methodNotAllowed(res, "GET, HEAD");
      sendPage(res, asset.type, asset.body);
      return;
    }
    if (path === "/favicon.ico") {
      sendNoContent(res);
      return;
    }
    if (path === "/api/blocklist" || path.startsWith("/api/blocklist/")) {
      await this.blocklist(req, res, method, url);
      return;
    }
    const get: Record<string, () => void> = {
      "/metrics": () => this.metrics(res),
      "/api/stats": () => sendJson(res, 200, this.stats()),
      "/api/clients": () => this.clients(res, url.searchParams),
      "/api/snapshot": () => sendJson(res, 200, this.snapshot()),
    };
    const handler = get[path];
    if (handler === undefined) throw new HttpError(404, `no such page: ${path}`);
    if (!read) throw this.methodNotAllowed(res, "GET, HEAD");
    if (this.ctx.source.defences === undefined) throw new HttpError(503, "the server is starting");
    handler();
  }

  private methodNotAllowed(res: ServerResponse, allow: string): HttpError {
    res.setHeader("allow", allow);
    return new HttpError(405, `method not allowed; use ${allow}`);
  }

  /** The figures of /api/stats (and, as JSON, of `ntpshield stats` and the dashboard). */
  stats(): Record<string, unknown> {
    const counters = this.ctx.source.stats();
    const d = this.ctx.source.defences!;
    const state = this.ctx.source.state;
    const nowS = this.nowS();
    return {
      version: VERSION,
      server: this.serverName(),
      addresses: this.ctx.source.addresses.map((a) => formatAddress(a.host, a.port)),
      threads: this.ctx.source.threads,
      takenAt: nowS,
      startedAt: this.ctx.startedAtMs / 1000,
      uptime: Math.max(0, this.ctx.now() - this.ctx.startedAtMs) / 1000,
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
    const store = this.ctx.source.blocklistStore;
    if (!this.ctx.config.blocklist.enabled || store === undefined) return { enabled: false, entries: 0 };
    try {
      return { enabled: true, entries: store.count() };
    } catch (err) {
      this.ctx.log.warn("monitoring endpoint: blocklist count failed", { error: err });
      return { enabled: true, entries: Number.NaN };
    }
  }

  private serverName(): string {
    const a = this.ctx.source.addresses[0];
    return a ? formatAddress(a.host, a.port) : "ntpshield";
  }

  private metrics(res: ServerResponse): void {
    const text = metricsText({
      uptimeS: Math.max(0, this.ctx.now() - this.ctx.startedAtMs) / 1000,
      counters: this.ctx.source.stats(),
      state: this.ctx.source.state,
      defences: this.ctx.source.defences!,
      blocklist: this.blocklistSummary(),
    });
    sendText(res, METRICS_CONTENT_TYPE, text);
  }

  private clients(res: ServerResponse, params: URLSearchParams): void {
    let q: ClientQuery;
    try {
      q = parseClientQuery(params);
    } catch (err) {
      if (err instanceof QueryError) throw new HttpError(400, err.message);
      throw err;
    }
    const mru = this.ctx.source.defences!.mru;
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
    sendJson(res, 200, { now: nowS, size: mru.size, clients: rows });
  }

  /** The survey's input (src/survey/snapshot.ts, format 1). */
  snapshot(): Snapshot {
    const c = this.ctx.source.stats();
    return snapshotFromMru(this.ctx.source.defences!.mru, {
      server: this.serverName(),
      takenAt: this.nowS(),
      startedAt: this.ctx.startedAtMs / 1000,
      counters: {
        received: c.received,
        served: c.byResponse.served,
        kissed: c.byResponse.kissed,
        dropped: c.byResponse.dropped,
      },
    });
  }

  private async blocklist(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    url: URL,
  ): Promise<void> {
    if (method === "GET" || method === "HEAD") listBlocklist(req, res, url, this.ctx);
    else if (method === "POST") await addToBlocklist(req, res, url, this.ctx);
    else if (method === "DELETE") removeFromBlocklist(req, res, url, this.ctx);
    else throw this.methodNotAllowed(res, "GET, HEAD, POST, DELETE");
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        sendError(res, err);
        return;
      }
      this.ctx.log.error("monitoring endpoint: request failed", { url: req.url, error: err });
      if (!res.headersSent) sendJson(res, 500, { error: "internal error (logged)" });
      else res.destroy();
    });
  }
}
