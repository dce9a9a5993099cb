// NTS Key Establishment records (RFC 8915 §4): what client and server say to each other over TLS, before any
// NTP packet. A record is a critical bit and a 15-bit type, a 16-bit body length, and the body; a message is
// records up to an End of Message record.
//
// The server's side reads untrusted bytes, so reading is bounded twice: a record whose announced body is
// longer than `maxRecordBody` is refused from its 4-octet header (before the body arrives), and a message
// that has not ended within `maxMessage` octets is refused whole. Either is a Bad Request (error 1); an
// unknown record with its critical bit set is Unrecognized Critical Record (error 0), RFC 8915 §4.1.3.

import { AEAD_AES_SIV_CMAC_256 } from "./aes-siv.ts";
import { NtsError } from "./errors.ts";

// RFC 8915 §7.6: record types.
export const KE_END_OF_MESSAGE = 0;
export const KE_NEXT_PROTOCOL = 1;
export const KE_ERROR = 2;
export const KE_WARNING = 3;
export const KE_AEAD_ALGORITHM = 4;
export const KE_NEW_COOKIE = 5;
export const KE_SERVER = 6;
export const KE_PORT = 7;

// RFC 8915 §4.1.3 and §7.7: error codes.
export const KE_ERROR_UNRECOGNIZED_CRITICAL = 0;
export const KE_ERROR_BAD_REQUEST = 1;
export const KE_ERROR_INTERNAL = 2;

/** RFC 8915 §7.4: the one next protocol there is, NTPv4. */
export const NTS_PROTOCOL_NTPV4 = 0;
/** The TLS ALPN name of NTS-KE (RFC 8915 §4). */
export const NTS_KE_ALPN = "ntske/1";
/** The IANA port of NTS-KE (RFC 8915 §7.1). */
export const NTS_KE_PORT = 4460;

const CRITICAL = 0x8000;
const HEADER = 4;

export interface KeRecord {
  readonly critical: boolean;
  readonly type: number;
  readonly body: Uint8Array;
}

export interface KeLimits {
  /** The longest record body accepted, octets. */
  readonly maxRecordBody: number;
  /** The longest message accepted, octets, End of Message included. */
  readonly maxMessage: number;
}

/** What a bounded reader made of the octets received so far. */
export type KeReadResult =
  | { readonly status: "incomplete" }
  | { readonly status: "complete"; readonly records: KeRecord[]; readonly length: number }
  | { readonly status: "error"; readonly code: number; readonly reason: string };

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

/**
 * Reads one message from the octets received so far. "incomplete" asks for more octets (the caller refuses
 * the message when it has `maxMessage` of them and still no end); "complete" gives the records, End of
 * Message included, and how many octets they took; "error" gives the RFC's error code and a reason for the
 * log. Never throws.
 */
export function readKeMessage(buf: Uint8Array, limits: KeLimits): KeReadResult {
  const records: KeRecord[] = [];
  let pos = 0;
  for (;;) {
    if (pos + HEADER > buf.length) break;
    const word = u16(buf, pos);
    const length = u16(buf, pos + 2);
    if (length > limits.maxRecordBody) {
      return {
        status: "error",
        code: KE_ERROR_BAD_REQUEST,
        reason: `record of type ${word & 0x7fff} announces ${length} octets, over the ${limits.maxRecordBody}-octet limit`,
      };
    }
    if (pos + HEADER + length > limits.maxMessage) {
      return {
        status: "error",
        code: KE_ERROR_BAD_REQUEST,
        reason: `message longer than ${limits.maxMessage} octets`,
      };
    }
    if (pos + HEADER + length > buf.length) break;
    const record = {
      critical: (word & CRITICAL) !== 0,
      type: word & 0x7fff,
      body: buf.subarray(pos + HEADER, pos + HEADER + length),
    };
    records.push(record);
    pos += HEADER + length;
    if (record.type === KE_END_OF_MESSAGE) return { status: "complete", records, length: pos };
  }
  if (buf.length >= limits.maxMessage) {
    return {
      status: "error",
      code: KE_ERROR_BAD_REQUEST,
      reason: `no end of message in ${limits.maxMessage} octets`,
    };
  }
  return { status: "incomplete" };
}

/** The records as octets. Throws NtsError ERR_NTS_KE_ENCODE for a type or body the format cannot carry. */
export function encodeKeRecords(records: readonly KeRecord[]): Uint8Array {
  let total = 0;
  for (const r of records) {
    if (!Number.isInteger(r.type) || r.type < 0 || r.type > 0x7fff)
      throw new NtsError("ERR_NTS_KE_ENCODE", `record type ${r.type} is not 0-32767`);
    if (r.body.length > 0xffff)
      throw new NtsError("ERR_NTS_KE_ENCODE", `record body of ${r.body.length} octets exceeds 65535`);
    total += HEADER + r.body.length;
  }
  const out = new Uint8Array(total);
  let pos = 0;
  for (const r of records) {
    const word = (r.critical ? CRITICAL : 0) | r.type;
    out[pos] = word >> 8;
    out[pos + 1] = word & 0xff;
    out[pos + 2] = r.body.length >> 8;
    out[pos + 3] = r.body.length & 0xff;
    out.set(r.body, pos + HEADER);
    pos += HEADER + r.body.length;
  }
  return out;
}

/** A record whose body is a list of 16-bit numbers (next protocol, AEAD algorithm, error, warning, port). */
export function u16Record(type: number, values: readonly number[], critical: boolean): KeRecord {
  const body = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    body[i * 2] = (v >> 8) & 0xff;
    body[i * 2 + 1] = v & 0xff;
  });
  return { critical, type, body };
}

function u16List(body: Uint8Array): number[] | null {
  if (body.length % 2 !== 0) return null;
  const out: number[] = [];
  for (let i = 0; i < body.length; i += 2) out.push(u16(body, i));
  return out;
}

export const END_OF_MESSAGE: KeRecord = Object.freeze({
  critical: true,
  type: KE_END_OF_MESSAGE,
  body: new Uint8Array(0),
});

/** An Error record and End of Message: the whole answer to a request the server refuses (RFC 8915 §4.1.3). */
export function errorMessage(code: number): Uint8Array {
  return encodeKeRecords([u16Record(KE_ERROR, [code], true), END_OF_MESSAGE]);
}

/** What the server hands out besides its answer to the negotiation. */
export interface KeOffer {
  /** Makes one cookie for the session's keys under the agreed AEAD (called `cookies` times). */
  readonly cookie: (aead: number) => Uint8Array;
  /** Cookies to send (RFC 8915 §4: eight is what clients expect). */
  readonly cookies: number;
  /** NTPv4 Server Negotiation: another server of the fleet for the client's NTP (RFC 8915 §4.1.7); "" = us. */
  readonly server: string;
  /** NTPv4 Port Negotiation (RFC 8915 §4.1.8); 0 = none said, the client uses 123. */
  readonly port: number;
}

/** The server's verdict on a request: the answer's records, or an error code, and what the log says. */
export type KeVerdict =
  | {
      readonly ok: true;
      /** The negotiated AEAD, or -1 when nothing in common (then no cookies were made). */
      readonly aead: number;
      readonly records: KeRecord[];
    }
  | { readonly ok: false; readonly code: number; readonly reason: string };

function refuse(code: number, reason: string): KeVerdict {
  return { ok: false, code, reason };
}

/**
 * The server's answer to a client's request (RFC 8915 §4.1), from the request's records (End of Message
 * last). The cookies are made only once the request is known to be good and an AEAD is agreed.
 */
export function answerKeRequest(request: readonly KeRecord[], offer: KeOffer): KeVerdict {
  let protocols: number[] | null = null;
  let aeads: number[] | null = null;
  for (let i = 0; i < request.length; i++) {
    const r = request[i]!;
    switch (r.type) {
      case KE_END_OF_MESSAGE:
        if (i !== request.length - 1 || r.body.length !== 0)
          return refuse(KE_ERROR_BAD_REQUEST, "end of message not last or not empty");
        break;
      case KE_NEXT_PROTOCOL: {
        if (protocols !== null) return refuse(KE_ERROR_BAD_REQUEST, "two next protocol records");
        protocols = u16List(r.body);
        if (protocols === null) return refuse(KE_ERROR_BAD_REQUEST, "next protocol body of odd length");
        break;
      }
      case KE_AEAD_ALGORITHM: {
        if (aeads !== null) return refuse(KE_ERROR_BAD_REQUEST, "two AEAD algorithm records");
        aeads = u16List(r.body);
        if (aeads === null) return refuse(KE_ERROR_BAD_REQUEST, "AEAD algorithm body of odd length");
        break;
      }
      case KE_ERROR:
      case KE_WARNING:
        // Only a server sends these (RFC 8915 §4.1.3, §4.1.4).
        return refuse(KE_ERROR_BAD_REQUEST, "a client sent an error or warning record");
      case KE_PORT:
        if (r.body.length !== 2) return refuse(KE_ERROR_BAD_REQUEST, "port record not 2 octets");
        break;
      case KE_SERVER:
      case KE_NEW_COOKIE:
        // The client's preference (server, port) may be ignored (RFC 8915 §4.1.7-4.1.8); a cookie from a
        // client means nothing here.
        break;
      default:
        if (r.critical)
          return refuse(KE_ERROR_UNRECOGNIZED_CRITICAL, `unrecognized critical record of type ${r.type}`);
    }
  }
  if (request.length === 0 || request[request.length - 1]!.type !== KE_END_OF_MESSAGE)
    return refuse(KE_ERROR_BAD_REQUEST, "no end of message");
  // RFC 8915 §4.1.2: exactly one Next Protocol record, with at least one protocol.
  if (protocols === null || protocols.length === 0)
    return refuse(KE_ERROR_BAD_REQUEST, "no next protocol offered");
  const ntp = protocols.includes(NTS_PROTOCOL_NTPV4);
  // §4.1.5: with NTPv4 offered, the AEAD record is required.
  if (ntp && (aeads === null || aeads.length === 0))
    return refuse(KE_ERROR_BAD_REQUEST, "NTPv4 offered without an AEAD algorithm");
  const records: KeRecord[] = [u16Record(KE_NEXT_PROTOCOL, ntp ? [NTS_PROTOCOL_NTPV4] : [], true)];
  let aead = -1;
  if (ntp) {
    aead = aeads!.includes(AEAD_AES_SIV_CMAC_256) ? AEAD_AES_SIV_CMAC_256 : -1;
    records.push(u16Record(KE_AEAD_ALGORITHM, aead >= 0 ? [aead] : [], true));
  }
  if (aead >= 0) {
    for (let i = 0; i < offer.cookies; i++)
      records.push({ critical: false, type: KE_NEW_COOKIE, body: offer.cookie(aead) });
    if (offer.server !== "")
      records.push({ critical: false, type: KE_SERVER, body: new TextEncoder().encode(offer.server) });
    if (offer.port > 0) records.push(u16Record(KE_PORT, [offer.port], false));
  }
  records.push(END_OF_MESSAGE);
  return { ok: true, aead, records };
}

/** What a client learnt from a server's answer (RFC 8915 §4.1). */
export interface KeAnswer {
  readonly aead: number;
  readonly cookies: Uint8Array[];
  /** The server to send NTP to, if the KE server named one (§4.1.7). */
  readonly server: string | undefined;
  /** Its port, if named (§4.1.8). */
  readonly port: number | undefined;
  /** Warning codes the server sent (§4.1.4). */
  readonly warnings: number[];
}

function protocolError(message: string): NtsError {
  return new NtsError("ERR_NTS_KE_PROTOCOL", message);
}

/**
 * The client's reading of a server's answer. Throws NtsError ERR_NTS_KE_ERROR for an Error record,
 * ERR_NTS_KE_PROTOCOL for an answer that breaks the RFC or agrees on nothing we speak.
 */
export function readKeAnswer(records: readonly KeRecord[]): KeAnswer {
  let protocols: number[] | null = null;
  let aeads: number[] | null = null;
  const cookies: Uint8Array[] = [];
  const warnings: number[] = [];
  let server: string | undefined;
  let port: number | undefined;
  for (const r of records) {
    switch (r.type) {
      case KE_END_OF_MESSAGE:
        break;
      case KE_ERROR: {
        const code = r.body.length === 2 ? u16(r.body, 0) : -1;
        throw new NtsError("ERR_NTS_KE_ERROR", `the NTS-KE server answered error ${code}`);
      }
      case KE_WARNING:
        if (r.body.length === 2) warnings.push(u16(r.body, 0));
        break;
      case KE_NEXT_PROTOCOL:
        if (protocols !== null) throw protocolError("two next protocol records");
        protocols = u16List(r.body);
        break;
      case KE_AEAD_ALGORITHM:
        if (aeads !== null) throw protocolError("two AEAD algorithm records");
        aeads = u16List(r.body);
        break;
      case KE_NEW_COOKIE:
        cookies.push(new Uint8Array(r.body));
        break;
      case KE_SERVER:
        server = new TextDecoder("utf-8", { fatal: false }).decode(r.body);
        break;
      case KE_PORT:
        if (r.body.length !== 2) throw protocolError("port record not 2 octets");
        port = u16(r.body, 0);
        break;
      default:
        if (r.critical) throw protocolError(`unrecognized critical record of type ${r.type}`);
    }
  }
  if (protocols === null || protocols.length !== 1 || protocols[0] !== NTS_PROTOCOL_NTPV4)
    throw protocolError("the server did not agree on NTPv4");
  if (aeads === null || aeads.length !== 1 || aeads[0] !== AEAD_AES_SIV_CMAC_256)
    throw protocolError("the server did not agree on AEAD_AES_SIV_CMAC_256");
  if (cookies.length === 0) throw protocolError("the server sent no cookie");
  return { aead: aeads[0], cookies, server, port, warnings };
}

/** A client's request: NTPv4, AEAD_AES_SIV_CMAC_256, End of Message (RFC 8915 §4.1). */
export function clientRequest(): Uint8Array {
  return encodeKeRecords([
    u16Record(KE_NEXT_PROTOCOL, [NTS_PROTOCOL_NTPV4], true),
    u16Record(KE_AEAD_ALGORITHM, [AEAD_AES_SIV_CMAC_256], true),
    END_OF_MESSAGE,
  ]);
}

/** RFC 8915 §5.1: the TLS exporter's label, and its context for each direction's key. */
export const NTS_EXPORTER_LABEL = "EXPORTER-network-time-security";
export function exporterContext(aead: number, serverToClient: boolean): Buffer {
  // Protocol ID (NTPv4 = 0), AEAD algorithm ID, then 0x00 for the client-to-server key, 0x01 the other way.
  return Buffer.from([
    NTS_PROTOCOL_NTPV4 >> 8,
    NTS_PROTOCOL_NTPV4 & 0xff,
    aead >> 8,
    aead & 0xff,
    serverToClient ? 1 : 0,
  ]);
}
