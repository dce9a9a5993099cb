// The monitoring endpoint's HTTP server (docs/monitoring.md): what an operator needs to see who is
// hammering the server (paper §5, "finding the elephants") with the tools already in use, on the main
// thread, over node:http. routes.ts holds its route table, handlers.ts and blocklist-api.ts the answers.
//
// Safety (a control interface open to the world is how ntpd's monlist became an amplifier):
// - loopback by default ([http] listen); reads are open to whoever can reach the socket;
// - writes only from the [control] allow list, and only ones a web page of another site could not have made
//   through the operator's browser (security.ts);
// - bounded: request bodies (4 KiB, body.ts), and here headers, connections, and timeouts on every phase of
//   a request.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "../../config/index.ts";
import { compileControlAllow } from "../control.ts";
import { ServeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatAddress } from "../messages.ts";
import type { MonitorContext, MonitorSource } from "./context.ts";
import { explainHttpBindError, HttpError } from "./errors.ts";
import { sendError, sendJson } from "./reply.ts";
import { dispatch } from "./routes.ts";

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

  private handle(req: IncomingMessage, res: ServerResponse): void {
    dispatch(req, res, this.ctx).catch((err: unknown) => {
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
