// The monitoring endpoint's HTTP server (docs/monitoring.md): what an operator needs to see who is
// hammering the server (paper §5, "finding the elephants") with the tools already in use, on the main
// thread, over node:http. routes.ts holds its route table, handlers.ts and blocklist-api.ts the answers.
//
// Safety (a control interface open to the world is how ntpd's monlist became an amplifier):
// - loopback by default ([http] listen); reads are open to whoever can reach the socket;
// - writes only from the [control] allow list, and only ones a web page of another site could not have made
//   through the operator's browser (security.ts);
// - bounded: request bodies (4 KiB, body.ts, refused before `100 Continue` invites one declared larger),
//   and here headers, connections, and timeouts on every phase of a request. A connection is destroyed, not
//   ended, when a limit is hit: end() closes only our side, and a client that keeps sending would keep its
//   slot. Slow and silent clients are thus bounded in time ([http] header-timeout, idle-timeout) and one
//   address in number ([http] max-connections-per-address), as nginx and Go's net/http bound theirs.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Config } from "../../config/index.ts";
import { compileControlAllow } from "../control.ts";
import { ServeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatAddress } from "../messages.ts";
import { declaredTooLarge, tooLarge } from "./body.ts";
import type { MonitorContext, MonitorSource } from "./context.ts";
import { explainHttpBindError, HttpError } from "./errors.ts";
import { sendError, sendJson } from "./reply.ts";
import { dispatch } from "./routes.ts";

export interface HttpMonitorOptions {
  source: MonitorSource;
  /** [http] listen and limits, [control] allow and [blocklist] enabled are read from it (reconfigure()). */
  config: Config;
  log: Logger;
  /** When the server started, Unix ms (its counters run from there). */
  startedAtMs: number;
  /** Unix ms; the server's clock (tests may set it). */
  now?: () => number;
}

const MAX_HEADER_BYTES = 8192;
const MAX_HEADERS = 64;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket idle this long (a slow reader of a large snapshot included) is closed. */
const SOCKET_TIMEOUT_MS = 60_000;
/**
 * How often node:http looks for connections past their header time (its default, 30 s, would let a slow
 * header live that much longer). Node's own deadline is set this much short of [http] header-timeout, so
 * that a connection is destroyed within the configured time, never after it.
 */
const CHECK_INTERVAL_MS = 250;

/** The answers written straight to the socket when the parser refuses a request (node:http's own choice). */
const REFUSALS: Readonly<Record<string, string>> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Content Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

/** [http]'s connection limits, in the units node:http takes. */
interface Limits {
  maxConnections: number;
  perAddress: number;
  headersTimeoutMs: number;
  idleTimeoutMs: number;
}

function limitsOf(config: Config): Limits {
  const http = config.http;
  return {
    maxConnections: http.maxConnections,
    perAddress: http.maxConnectionsPerAddress,
    headersTimeoutMs: Math.max(CHECK_INTERVAL_MS, Math.round(http.headerTimeout * 1000) - CHECK_INTERVAL_MS),
    idleTimeoutMs: Math.round(http.idleTimeout * 1000),
  };
}

export class HttpMonitor {
  /** What every handler reads; reconfigure() replaces its configuration. */
  private readonly ctx: MonitorContext;
  private server: Server | undefined;
  private limits: Limits;
  /** Open connections by client address (only addresses with one or more). */
  private readonly perAddress = new Map<string, number>();
  /** Answers being written, by socket: a parser error on such a socket must not write into one. */
  private readonly answering = new WeakMap<Duplex, number>();
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
    this.limits = limitsOf(options.config);
  }

  /**
   * Applies a reloaded configuration: the control allow list, the blocklist switch and the connection
   * limits take effect now (on connections made from then on; a header deadline also on those open).
   */
  reconfigure(config: Config): void {
    this.ctx.allowed = compileControlAllow(config.control.allow).allowsAddress;
    this.ctx.config = config;
    this.limits = limitsOf(config);
    if (this.server) {
      this.server.maxConnections = this.limits.maxConnections;
      this.server.headersTimeout = this.limits.headersTimeoutMs;
    }
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
        headersTimeout: this.limits.headersTimeoutMs,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: CHECK_INTERVAL_MS,
      },
      (req, res) => this.handle(req, res),
    );
    server.maxConnections = this.limits.maxConnections;
    server.maxHeadersCount = MAX_HEADERS;
    server.setTimeout(SOCKET_TIMEOUT_MS, (socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(explainHttpBindError(formatAddress(host, port), err.code ?? "", err.message)),
      );
      server.listen({ host, port, exclusive: true, ipv6Only: host.includes(":") }, () => resolve());
    });
    server.on("error", (err) => this.ctx.log.error("monitoring endpoint", { error: err }));
    // node:http's own listener (added by createServer) has run: the socket is the parser's by now.
    server.on("connection", (socket: Socket) => this.admit(socket));
    server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => this.refuse(err, socket));
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => this.checkContinue(req, res));
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

  /**
   * A new connection: closed at once beyond [http] max-connections-per-address for its address, and after
   * [http] idle-timeout if it has sent nothing by then (node:http would wait for the header time).
   */
  private admit(socket: Socket): void {
    const address = socket.remoteAddress;
    const held = address === undefined ? 0 : (this.perAddress.get(address) ?? 0);
    if (address === undefined || held >= this.limits.perAddress) {
      socket.destroy();
      return;
    }
    this.perAddress.set(address, held + 1);
    const idle = setTimeout(() => {
      if (socket.bytesRead === 0) socket.destroy();
    }, this.limits.idleTimeoutMs);
    idle.unref();
    socket.once("close", () => {
      clearTimeout(idle);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n > 0) this.perAddress.set(address, n);
      else this.perAddress.delete(address);
    });
  }

  /**
   * What the parser refused, or a header or request past its time: answered (431 for an oversized header,
   * 408 for a late one, else 400) unless an answer is already on its way, then destroyed.
   */
  private refuse(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (socket.writable && err.code !== "ECONNRESET" && !this.answering.has(socket)) {
      const status = REFUSALS[err.code ?? ""] ?? "400 Bad Request";
      socket.write(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
    socket.destroy();
  }

  /**
   * `Expect: 100-continue`: a body declared larger than the endpoint takes is refused before the client is
   * invited to send it (RFC 9110 §10.1.1); any other request is invited and answered as usual.
   */
  private checkContinue(req: IncomingMessage, res: ServerResponse): void {
    if (declaredTooLarge(req)) {
      sendError(res, tooLarge());
      return;
    }
    res.writeContinue();
    this.handle(req, res);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.answering.set(socket, (this.answering.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const n = (this.answering.get(socket) ?? 1) - 1;
      if (n > 0) this.answering.set(socket, n);
      else this.answering.delete(socket);
    });
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
