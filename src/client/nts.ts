// The client's side of NTS (RFC 8915): the key exchange over TLS 1.3 (§4), the cookies it keeps (one spent
// per request, new ones from each reply, §5.7), and one authenticated NTP exchange that takes the server
// and port NTS-KE named (§4.1.7-§4.1.8: the fleet's redirection, decided by the KE server, not by DNS).
// A reply counts only if it echoes our Unique Identifier and its authenticator opens under the
// server-to-client key; an NTS NAK sends the client back to NTS-KE.

import { randomBytes } from "node:crypto";
import { isIP } from "node:net";
import { connect } from "node:tls";
import { SIV_KEY_LENGTH } from "../nts/aes-siv.ts";
import { NtsError } from "../nts/errors.ts";
import { buildNtsRequest, checkNtsReply, NONCE_LENGTH, UID_MIN_LENGTH } from "../nts/extensions.ts";
import {
  clientRequest,
  exporterContext,
  NTS_EXPORTER_LABEL,
  NTS_KE_ALPN,
  NTS_KE_PORT,
  readKeAnswer,
  readKeMessage,
} from "../nts/ke-records.ts";
import { NTP_HEADER_LENGTH } from "../protocol/index.ts";
import { unmapAddress } from "./address.ts";
import { buildRequest, evaluateReply, type Sample } from "./measure.ts";
import { cryptoRandom } from "./random.ts";
import { udpExchange } from "./udp.ts";

/** How many cookies a client keeps (RFC 8915 §4: the server's eight). */
export const NTS_COOKIES_WANTED = 8;

export interface NtsKeOptions {
  /** The NTS-KE server. */
  host: string;
  /** Default 4460. */
  port?: number;
  /** PEM certificates to trust instead of the system's (a private CA, a test's). */
  ca?: string | Buffer | undefined;
  /** Seconds for the whole exchange (default 5). */
  timeout?: number;
}

/** What NTS-KE gave: the session's keys, the cookies, and where to send NTP. */
export interface NtsSession {
  readonly aead: number;
  readonly c2s: Uint8Array;
  readonly s2c: Uint8Array;
  /** Unspent cookies, oldest first. */
  cookies: Uint8Array[];
  /** Where NTP goes: the KE server's Server Negotiation, else the KE server's own name (§4.1.7). */
  readonly ntpHost: string;
  /** The KE server's Port Negotiation, else 123 (§4.1.8). */
  readonly ntpPort: number;
}

/**
 * NTS-KE with `o.host` (RFC 8915 §4): TLS 1.3, ALPN ntske/1, the certificate checked against the name (or
 * address) asked; our request (NTPv4, AEAD_AES_SIV_CMAC_256), the server's answer, and the keys exported
 * from TLS. Throws NtsError (ERR_NTS_KE_ERROR, ERR_NTS_KE_PROTOCOL) or the TLS error.
 */
export function ntsKeyExchange(o: NtsKeOptions): Promise<NtsSession> {
  const port = o.port ?? NTS_KE_PORT;
  const timeoutMs = (o.timeout ?? 5) * 1000;
  return new Promise<NtsSession>((resolve, reject) => {
    const socket = connect({
      host: o.host,
      port,
      // SNI carries a name, never an address (RFC 6066 §3); the certificate check uses `host` either way.
      ...(isIP(o.host) === 0 ? { servername: o.host } : {}),
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
      ALPNProtocols: [NTS_KE_ALPN],
      minVersion: "TLSv1.3",
    });
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () =>
        fail(
          new NtsError(
            "ERR_NTS_KE_PROTOCOL",
            `NTS-KE with ${o.host}:${port}: no answer within ${timeoutMs / 1000} s`,
          ),
        ),
      timeoutMs,
    );
    socket.once("secureConnect", () => {
      if (socket.alpnProtocol !== NTS_KE_ALPN) {
        fail(new NtsError("ERR_NTS_KE_PROTOCOL", `${o.host}:${port} did not agree on ALPN ${NTS_KE_ALPN}`));
        return;
      }
      socket.write(clientRequest());
    });
    socket.on("data", (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const r = readKeMessage(received, { maxRecordBody: 65535, maxMessage: 65536 });
      if (r.status === "incomplete") return;
      if (r.status === "error") return fail(new NtsError("ERR_NTS_KE_PROTOCOL", r.reason));
      try {
        const answer = readKeAnswer(r.records);
        const c2s = new Uint8Array(
          socket.exportKeyingMaterial(
            SIV_KEY_LENGTH,
            NTS_EXPORTER_LABEL,
            exporterContext(answer.aead, false),
          ),
        );
        const s2c = new Uint8Array(
          socket.exportKeyingMaterial(SIV_KEY_LENGTH, NTS_EXPORTER_LABEL, exporterContext(answer.aead, true)),
        );
        settled = true;
        clearTimeout(timer);
        socket.end();
        resolve({
          aead: answer.aead,
          c2s,
          s2c,
          cookies: answer.cookies,
          ntpHost: answer.server ?? o.host,
          ntpPort: answer.port ?? 123,
        });
      } catch (err) {
        fail(err as Error);
      }
    });
    socket.on("error", fail);
    socket.on("close", () =>
      fail(new NtsError("ERR_NTS_KE_PROTOCOL", `${o.host}:${port} closed before its answer`)),
    );
  });
}

export type NtsQueryOutcome = "sample" | "nak" | "kiss" | "unusable" | "no-reply" | "no-cookie" | "error";

export interface NtsQueryResult {
  outcome: NtsQueryOutcome;
  sample: Sample | undefined;
  /** For "kiss": the code (an unauthenticated kiss is only a hint, RFC 8915 §5.7). */
  kiss: string | undefined;
  reason: string | undefined;
  /** New cookies the reply carried (already added to the session). */
  newCookies: number;
  /** Datagrams ignored: not ours, or not authenticated. */
  ignored: number;
  /** Where it was sent. */
  address: string;
  port: number;
}

/**
 * One authenticated exchange (RFC 8915 §5.7) with the server the session names (an address: resolve a name
 * first). Spends one cookie and asks, by placeholders, for enough new ones to hold NTS_COOKIES_WANTED.
 */
export async function ntsQuery(
  session: NtsSession,
  address: string,
  o: { timeout?: number } = {},
): Promise<NtsQueryResult> {
  const port = session.ntpPort;
  const result: NtsQueryResult = {
    outcome: "no-reply",
    sample: undefined,
    kiss: undefined,
    reason: undefined,
    newCookies: 0,
    ignored: 0,
    address,
    port,
  };
  const cookie = session.cookies.shift();
  if (cookie === undefined)
    return { ...result, outcome: "no-cookie", reason: "no cookie left: run NTS-KE again" };
  const placeholders = Math.max(0, NTS_COOKIES_WANTED - 1 - session.cookies.length);
  const wallMs = () => performance.timeOrigin + performance.now();
  const header = buildRequest(wallMs(), cryptoRandom(), 6);
  const uid = new Uint8Array(randomBytes(UID_MIN_LENGTH));
  const packet = buildNtsRequest(
    header.packet,
    uid,
    cookie,
    placeholders,
    session.c2s,
    new Uint8Array(randomBytes(NONCE_LENGTH)),
  );
  const transmit = packet.slice(40, 48);
  let t1 = wallMs();
  const x = udpExchange({
    family: address.includes(":") ? 6 : 4,
    address,
    port,
    packet,
    timeoutMs: (o.timeout ?? 2) * 1000,
    wallMs,
    onSent: (t) => {
      t1 = t;
    },
    onDatagram: (data, from, t4) => {
      if (
        unmapAddress(from.address) !== unmapAddress(address) ||
        from.port !== port ||
        data.length < NTP_HEADER_LENGTH
      ) {
        result.ignored++;
        return false;
      }
      const auth = checkNtsReply(data, uid, session.s2c);
      const verdict = evaluateReply(data.subarray(0, NTP_HEADER_LENGTH), transmit, t1, t4);
      if (!auth.ok) {
        if (auth.nak && verdict.ok === false && verdict.reason === "kiss") {
          // NTS NAK: the cookies are no good here; the caller runs NTS-KE again.
          session.cookies.length = 0;
          result.outcome = "nak";
          result.reason = auth.reason;
          return true;
        }
        if (verdict.ok === false && verdict.reason === "kiss") {
          // An unauthenticated kiss that echoes our origin (a server's defences answer before any NTS work:
          // RATE from a call-gap): honoured as a plain client would, which RFC 8915 §5.7 leaves to us.
          result.outcome = "kiss";
          result.kiss = String.fromCharCode(...data.subarray(12, 16));
          result.reason = "unauthenticated";
          return true;
        }
        result.ignored++;
        result.reason = auth.reason;
        return false;
      }
      session.cookies.push(...auth.cookies);
      result.newCookies = auth.cookies.length;
      if (verdict.ok) {
        result.outcome = "sample";
        result.sample = verdict.sample;
      } else if (verdict.reason === "kiss") {
        result.outcome = "kiss";
        result.kiss = String.fromCharCode(...data.subarray(12, 16));
      } else {
        result.outcome = "unusable";
        result.reason = verdict.reason;
      }
      return true;
    },
  });
  const done = await x.done;
  if (done.kind === "timeout" && result.outcome === "no-reply")
    result.reason ??= "no authenticated reply in time";
  if (done.kind === "error") return { ...result, outcome: "error", reason: done.error.message };
  return result;
}

/** How the running client (NtpClient) reaches NTS-KE. */
export interface NtsClientOptions {
  /** PEM certificates to trust instead of the system's. */
  ca?: string | Buffer | undefined;
  /** Seconds for each key exchange (default 5). */
  timeout?: number;
}

/** What a reply to an NTS request is, for the client's shell. */
export type NtsVerdict = "ok" | "nak" | "kiss" | "ignore";

/**
 * The NTS state of a running client's sources (RFC 8915 §5.7): a session per source from NTS-KE, a cookie
 * spent per request, the new ones kept from each authenticated reply, and a new key exchange when the
 * cookies run out or a reply is an NTS NAK. Source i is the i-th KE server given to establish().
 */
export class NtsSources {
  private readonly ke: readonly { host: string; port: number }[];
  private readonly o: NtsClientOptions;
  private readonly sessions: (NtsSession | undefined)[] = [];
  private readonly pending = new Map<number, Promise<NtsSession>>();

  constructor(keServers: readonly { host: string; port: number }[], o: NtsClientOptions = {}) {
    this.ke = keServers;
    this.o = o;
  }

  /** NTS-KE with every server; returns where each source sends its NTP (the negotiated server and port). */
  async establish(): Promise<{ host: string; port: number }[]> {
    const sessions = await Promise.all(this.ke.map((_, i) => this.exchangeKeys(i)));
    return sessions.map((s) => ({ host: s.ntpHost, port: s.ntpPort }));
  }

  private exchangeKeys(i: number): Promise<NtsSession> {
    let p = this.pending.get(i);
    if (p === undefined) {
      const k = this.ke[i]!;
      p = ntsKeyExchange({ host: k.host, port: k.port, ca: this.o.ca, timeout: this.o.timeout ?? 5 }).then(
        (s) => {
          this.sessions[i] = s;
          this.pending.delete(i);
          return s;
        },
        (err: unknown) => {
          this.pending.delete(i);
          throw err;
        },
      );
      this.pending.set(i, p);
    }
    return p;
  }

  /**
   * The NTS request for source i around the client's 48-octet `header`, with the check of its reply: "ok"
   * (authenticated, new cookies kept), "nak" (NTS NAK: the next request runs NTS-KE first), "kiss" (an
   * unauthenticated kiss-o'-death, for the core to judge by its origin), "ignore" (not
   * ours, or not authenticated). Runs NTS-KE first when the source has no cookie left.
   */
  async request(
    i: number,
    header: Uint8Array,
  ): Promise<{ packet: Uint8Array; check: (reply: Uint8Array) => NtsVerdict }> {
    let s = this.sessions[i];
    if (s === undefined || s.cookies.length === 0) s = await this.exchangeKeys(i);
    const session = s;
    const cookie = session.cookies.shift()!;
    const placeholders = Math.max(0, NTS_COOKIES_WANTED - 1 - session.cookies.length);
    const uid = new Uint8Array(randomBytes(UID_MIN_LENGTH));
    const packet = buildNtsRequest(
      header,
      uid,
      cookie,
      placeholders,
      session.c2s,
      new Uint8Array(randomBytes(NONCE_LENGTH)),
    );
    const check = (reply: Uint8Array): NtsVerdict => {
      const r = checkNtsReply(reply, uid, session.s2c);
      if (r.ok) {
        session.cookies.push(...r.cookies);
        return "ok";
      }
      if (r.nak) {
        session.cookies.length = 0;
        return "nak";
      }
      // A kiss-o'-death without NTS (the server's defences spoke before any NTS work): the core judges it
      // by its origin as any kiss, and obeys it as a plain client does (RFC 8915 §5.7 leaves that to us).
      return reply.length >= NTP_HEADER_LENGTH && reply[1] === 0 ? "kiss" : "ignore";
    };
    return { packet, check };
  }
}
