// The NTS-KE server (RFC 8915 §4): TLS 1.3 only, ALPN "ntske/1", one request and one answer per connection.
// It runs in the main thread: a key exchange is a few records after a TLS handshake, rare beside NTP
// packets, and the workers are left to the packets.
//
// What a client can hold of it is bounded (docs/nts.md): connections at once (beyond them a new one is
// closed at once), time for the TLS handshake and as long again for the whole request, the longest record
// and the longest request. A request that breaks a limit or the RFC is answered with its Error record and the
// connection is closed (RFC 8915 §4.1.3); every outcome is counted for /metrics.

import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import { SIV_KEY_LENGTH } from "../nts/aes-siv.ts";
import { type SessionKeys, sealCookie } from "../nts/cookie.ts";
import {
  answerKeRequest,
  encodeKeRecords,
  errorMessage,
  exporterContext,
  KE_ERROR_BAD_REQUEST,
  KE_ERROR_INTERNAL,
  KE_ERROR_UNRECOGNIZED_CRITICAL,
  NTS_EXPORTER_LABEL,
  NTS_KE_ALPN,
  readKeMessage,
} from "../nts/ke-records.ts";
import type { CookieKey } from "../nts/keys.ts";
import { ServeError } from "./errors.ts";
import type { Logger } from "./log.ts";

/** What the KE server reads of [nts] (the Config section has this shape). */
export interface NtsKeSettings {
  readonly cookies: number;
  readonly server: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly handshakeTimeout: number;
  readonly maxRecord: number;
  readonly maxMessage: number;
}

/** The outcomes counted, one per connection (docs/monitoring.md: ntpshield_nts_ke_total). */
export const KE_OUTCOMES = [
  "served", // cookies handed out
  "served_redirected", // cookies handed out, naming another server of the fleet (overload: [nts] shed-to-fleet)
  "no_common_algorithm", // answered, but no NTPv4 or no AEAD in common: no cookies
  "error_bad_request", // answered with error 1 (malformed, oversized, a broken rule of §4.1)
  "error_unrecognized_critical", // answered with error 0
  "error_internal", // answered with error 2 (key export failed)
  "tls_failed", // the TLS handshake failed (wrong version, no common ALPN, bad client hello)
  "no_alpn", // TLS done without ALPN ntske/1
  "timeout", // TLS not done within handshake-timeout, or no whole request within as long again
  "closed_early", // the client closed before a whole request
  "refused_max_connections", // over max-connections: closed at once
] as const;
export type KeOutcome = (typeof KE_OUTCOMES)[number];

export interface NtsKeOptions {
  /** "host:port"; port 0 = any free port. */
  listen: string;
  certificatePath: string;
  keyPath: string;
  settings: NtsKeSettings;
  /** The key that seals new cookies now. */
  currentKey: () => CookieKey;
  /** The NTP port to tell clients when [nts] port is 0 and ours is not 123 (0: say nothing). */
  ntpPort: number;
  /**
   * Another server of the fleet to name to the client at this address, or undefined for the configured one
   * (src/core/nts-ke-redirect.ts decides; asked once per request).
   */
  redirect?: (remoteAddress: string) => { host: string; port: number } | undefined;
  log: Logger;
}

function splitHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new ServeError("ERR_NTS_LISTEN", `nts.listen: not an address and port: "${s}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

export class NtsKeServer {
  private readonly server: Server;
  private settings: NtsKeSettings;
  private readonly opts: NtsKeOptions;
  private readonly counts = new Map<KeOutcome, number>(KE_OUTCOMES.map((o) => [o, 0]));
  /** Connections open now, cut by close(). */
  private readonly open = new Set<Socket>();
  /** Where it listens once listen() resolved, "host:port". */
  address = "";

  constructor(opts: NtsKeOptions) {
    this.opts = opts;
    this.settings = opts.settings;
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(opts.certificatePath);
    } catch (err) {
      throw new ServeError(
        "ERR_NTS_CERT",
        `nts.certificate: cannot read ${opts.certificatePath}: ${(err as Error).message}`,
      );
    }
    try {
      key = readFileSync(opts.keyPath);
    } catch (err) {
      throw new ServeError("ERR_NTS_CERT", `nts.key: cannot read ${opts.keyPath}: ${(err as Error).message}`);
    }
    try {
      this.server = createServer({
        cert,
        key,
        // RFC 8915 §3: TLS 1.3 or later, and the ALPN protocol is required.
        minVersion: "TLSv1.3",
        maxVersion: "TLSv1.3",
        ALPNProtocols: [NTS_KE_ALPN],
        handshakeTimeout: opts.settings.handshakeTimeout * 1000,
      });
    } catch (err) {
      throw new ServeError(
        "ERR_NTS_CERT",
        `nts.certificate / nts.key: not a usable certificate and key: ${(err as Error).message}`,
      );
    }
    this.server.maxConnections = opts.settings.maxConnections;
    this.server.on("drop", () => this.count("refused_max_connections"));
    this.server.on("connection", (raw: Socket) => {
      this.open.add(raw);
      raw.once("close", () => this.open.delete(raw));
    });
    this.server.on("tlsClientError", (err: NodeJS.ErrnoException, socket) => {
      this.count(err.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ? "timeout" : "tls_failed");
      socket.destroy();
    });
    this.server.on("secureConnection", (socket: TLSSocket) => this.session(socket));
  }

  listen(): Promise<string> {
    const { host, port } = splitHostPort(this.opts.listen);
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(
          new ServeError(
            "ERR_NTS_LISTEN",
            `nts.listen: cannot listen on ${this.opts.listen}: ${err.message}`,
          ),
        );
      this.server.once("error", onError);
      this.server.listen(port, host, () => {
        this.server.off("error", onError);
        // Later errors of the listening socket (too many open files, say) are logged, never fatal.
        this.server.on("error", (err) => this.opts.log.error("nts-ke: server error", { error: err }));
        const a = this.server.address();
        if (a !== null && typeof a === "object") {
          this.address = a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
        }
        resolve(this.address);
      });
    });
  }

  reconfigure(settings: NtsKeSettings): void {
    this.settings = settings;
    this.server.maxConnections = settings.maxConnections;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      // Connections in progress are cut: a key exchange is retried by its client.
      for (const raw of this.open) raw.destroy();
    });
  }

  stats(): Record<KeOutcome, number> {
    return Object.fromEntries(this.counts) as Record<KeOutcome, number>;
  }

  private count(o: KeOutcome): void {
    this.counts.set(o, (this.counts.get(o) ?? 0) + 1);
  }

  private session(socket: TLSSocket): void {
    if (socket.alpnProtocol !== NTS_KE_ALPN) {
      this.count("no_alpn");
      socket.destroy();
      return;
    }
    const limits = { maxRecordBody: this.settings.maxRecord, maxMessage: this.settings.maxMessage };
    let received: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (o: KeOutcome, answer: Uint8Array) => {
      done = true;
      this.count(o);
      socket.end(answer);
    };
    // TLS took up to handshake-timeout; the request gets as long again.
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      this.count("timeout");
      socket.destroy();
    }, this.settings.handshakeTimeout * 1000);
    timer.unref();
    socket.on("error", () => {
      // A reset or a broken TLS record: counted as closing early, below.
    });
    socket.on("close", () => {
      clearTimeout(timer);
      if (!done) this.count("closed_early");
    });
    socket.on("data", (chunk: Buffer) => {
      if (done) return;
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const r = readKeMessage(received, limits);
      if (r.status === "incomplete") return;
      if (r.status === "error") {
        this.opts.log.debug("nts-ke: request refused", { reason: r.reason });
        return finish(outcomeOf(r.code), errorMessage(r.code));
      }
      // RFC 8915 §4: the client sends one message and waits; anything after it is a bad request.
      if (r.length !== received.length)
        return finish("error_bad_request", errorMessage(KE_ERROR_BAD_REQUEST));
      // The session's keys (RFC 8915 §5.1), exported once the AEAD is agreed, for the first cookie.
      let session: SessionKeys | undefined;
      const cookie = (aead: number) => {
        session ??= {
          aead,
          c2s: socket.exportKeyingMaterial(SIV_KEY_LENGTH, NTS_EXPORTER_LABEL, exporterContext(aead, false)),
          s2c: socket.exportKeyingMaterial(SIV_KEY_LENGTH, NTS_EXPORTER_LABEL, exporterContext(aead, true)),
        };
        return sealCookie(this.opts.currentKey(), session);
      };
      let verdict: ReturnType<typeof answerKeRequest>;
      const elsewhere = this.opts.redirect?.(socket.remoteAddress ?? "");
      try {
        verdict = answerKeRequest(r.records, {
          cookies: this.settings.cookies,
          server: elsewhere?.host ?? this.settings.server,
          port: elsewhere?.port ?? (this.settings.port > 0 ? this.settings.port : this.opts.ntpPort),
          cookie,
        });
      } catch (err) {
        this.opts.log.error("nts-ke: key export or cookie failed", { error: err });
        return finish("error_internal", errorMessage(KE_ERROR_INTERNAL));
      }
      if (!verdict.ok) {
        this.opts.log.debug("nts-ke: request refused", { reason: verdict.reason });
        return finish(outcomeOf(verdict.code), errorMessage(verdict.code));
      }
      if (verdict.aead < 0) return finish("no_common_algorithm", encodeKeRecords(verdict.records));
      finish(elsewhere === undefined ? "served" : "served_redirected", encodeKeRecords(verdict.records));
    });
  }
}

function outcomeOf(code: number): KeOutcome {
  return code === KE_ERROR_UNRECOGNIZED_CRITICAL
    ? "error_unrecognized_critical"
    : code === KE_ERROR_INTERNAL
      ? "error_internal"
      : "error_bad_request";
}
