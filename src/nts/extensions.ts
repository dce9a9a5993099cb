// The NTS extension fields of NTP packets (RFC 8915 §5.3-§5.7), both sides:
//
//   Unique Identifier (0x0104)  >= 32 random octets, echoed by the server: the client's replay check
//   NTS Cookie (0x0204)         one cookie from NTS-KE or an earlier reply
//   Cookie Placeholder (0x0304) room for one more cookie in the reply (the reply is never the larger)
//   Authenticator (0x0404)      nonce and AEAD ciphertext over everything before it; in a reply, the
//                               ciphertext carries the new cookies, encrypted
//
// The server's side reads offsets into a reusable view and writes its reply in the request's own buffer,
// after the 48-octet header src/core wrote. Extension fields after the Authenticator are not covered by it
// and are ignored (RFC 8915 §5.6).

import { NTP_HEADER_LENGTH, NTP_MAX_PACKET_LENGTH } from "../protocol/index.ts";
import { SIV_TAG_LENGTH, SivKey } from "./aes-siv.ts";
import { NtsError } from "./errors.ts";

/** A key as bytes, or already made ready (SivKey: the server's keys, kept). */
export type AeadKey = Uint8Array | SivKey;

function ready(key: AeadKey): SivKey {
  return key instanceof SivKey ? key : new SivKey(key);
}

export const EF_UNIQUE_IDENTIFIER = 0x0104;
export const EF_NTS_COOKIE = 0x0204;
export const EF_COOKIE_PLACEHOLDER = 0x0304;
export const EF_NTS_AUTHENTICATOR = 0x0404;

/** RFC 8915 §5.3: at least 32 octets of randomness. */
export const UID_MIN_LENGTH = 32;
/** The nonce of every authenticator we write (RFC 8915 §5.6 asks for at least 16 octets). */
export const NONCE_LENGTH = 16;

// What inspectNtsRequest found.
/** No NTS fields: a plain request (a Unique Identifier alone is not NTS, RFC 8915 §5.3). */
export const NTS_NONE = 0;
/** A Unique Identifier, a cookie and an authenticator, well formed. */
export const NTS_REQUEST = 1;
/** NTS fields, but not what RFC 8915 §5.7 asks: missing, repeated or with bad lengths. */
export const NTS_MALFORMED = 2;

/** Offsets of a request's NTS fields (reused per packet: no allocation to find them). */
export class NtsRequestView {
  /** Offset of the Unique Identifier field (its header), and the field's whole length. */
  uid = -1;
  uidLength = 0;
  /** Offset of the cookie (the field's body), and its length. */
  cookie = -1;
  cookieLength = 0;
  placeholders = 0;
  /** Offset of the Authenticator field (its header): the associated data is everything before it. */
  auth = -1;
  nonce = -1;
  nonceLength = 0;
  ciphertext = -1;
  ciphertextLength = 0;

  reset(): void {
    this.uid = -1;
    this.uidLength = 0;
    this.cookie = -1;
    this.cookieLength = 0;
    this.placeholders = 0;
    this.auth = -1;
    this.nonce = -1;
    this.nonceLength = 0;
    this.ciphertext = -1;
    this.ciphertextLength = 0;
  }
}

function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Finds the NTS fields of an NTPv4 request in buf[0..length) and returns NTS_NONE, NTS_REQUEST or
 * NTS_MALFORMED. Bounds-checked on its own (it may run before checkPacket); allocates nothing.
 */
export function inspectNtsRequest(buf: Uint8Array, length: number, view: NtsRequestView): number {
  view.reset();
  const n = Math.min(length, buf.length);
  if (n <= NTP_HEADER_LENGTH || ((buf[0]! >> 3) & 7) !== 4) return NTS_NONE;
  let pos = NTP_HEADER_LENGTH;
  let bad = false;
  let nts = false;
  // RFC 7822's walk: more than a MAC's worth left means a field starts here.
  while (n - pos > 24) {
    const type = u16(buf, pos);
    const len = u16(buf, pos + 2);
    if (len < 16 || (len & 3) !== 0 || len > n - pos) return nts ? NTS_MALFORMED : NTS_NONE;
    const body = pos + 4;
    const bodyLength = len - 4;
    switch (type) {
      case EF_UNIQUE_IDENTIFIER:
        if (view.uid >= 0 || bodyLength < UID_MIN_LENGTH) bad = true;
        view.uid = pos;
        view.uidLength = len;
        break;
      case EF_NTS_COOKIE:
        nts = true;
        if (view.cookie >= 0) bad = true;
        view.cookie = body;
        view.cookieLength = bodyLength;
        break;
      case EF_COOKIE_PLACEHOLDER:
        nts = true;
        view.placeholders++;
        break;
      case EF_NTS_AUTHENTICATOR: {
        nts = true;
        const nonceLength = u16(buf, body);
        const ctLength = u16(buf, body + 2);
        if (
          nonceLength === 0 ||
          4 + pad4(nonceLength) + pad4(ctLength) > bodyLength ||
          ctLength < SIV_TAG_LENGTH
        ) {
          return NTS_MALFORMED;
        }
        view.auth = pos;
        view.nonce = body + 4;
        view.nonceLength = nonceLength;
        view.ciphertext = body + 4 + pad4(nonceLength);
        view.ciphertextLength = ctLength;
        // What follows the authenticator is not authenticated: ignored.
        return bad || view.uid < 0 || view.cookie < 0 ? NTS_MALFORMED : NTS_REQUEST;
      }
    }
    pos += len;
  }
  return nts ? NTS_MALFORMED : NTS_NONE;
}

/** Whether the request's authenticator opens under the client-to-server key (RFC 8915 §5.6). */
export function verifyRequest(req: Uint8Array, view: NtsRequestView, c2s: AeadKey): boolean {
  const plain = ready(c2s).open(
    req.subarray(view.nonce, view.nonce + view.nonceLength),
    req.subarray(0, view.auth),
    req.subarray(view.ciphertext, view.ciphertext + view.ciphertextLength),
  );
  return plain !== null;
}

const COOKIE_FIELD_OVERHEAD = 4;
const AUTH_OVERHEAD = 4 + 4 + NONCE_LENGTH + SIV_TAG_LENGTH;

/**
 * How many cookies of `cookieLength` octets an authenticated reply can carry without being longer than the
 * request (RFC 8915 §5.7): one for the cookie spent and one per placeholder, as room allows.
 */
export function cookiesThatFit(view: NtsRequestView, requestLength: number, cookieLength: number): number {
  const room = requestLength - NTP_HEADER_LENGTH - view.uidLength - AUTH_OVERHEAD;
  const each = COOKIE_FIELD_OVERHEAD + pad4(cookieLength);
  return Math.max(0, Math.min(1 + view.placeholders, Math.floor(room / each)));
}

/** Copies the request's Unique Identifier field right after the header; returns where the next field goes. */
function copyUid(buf: Uint8Array, req: Uint8Array, view: NtsRequestView): number {
  buf.set(req.subarray(view.uid, view.uid + view.uidLength), NTP_HEADER_LENGTH);
  return NTP_HEADER_LENGTH + view.uidLength;
}

function writeFieldHeader(buf: Uint8Array, at: number, type: number, length: number): void {
  buf[at] = type >> 8;
  buf[at + 1] = type & 0xff;
  buf[at + 2] = length >> 8;
  buf[at + 3] = length & 0xff;
}

/** Cookies as NTS Cookie extension fields, one after the other: the plaintext a reply encrypts. */
export function cookieFields(cookies: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of cookies) total += COOKIE_FIELD_OVERHEAD + pad4(c.length);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of cookies) {
    const len = COOKIE_FIELD_OVERHEAD + pad4(c.length);
    writeFieldHeader(out, at, EF_NTS_COOKIE, len);
    out.set(c, at + COOKIE_FIELD_OVERHEAD);
    at += len;
  }
  return out;
}

/**
 * Writes an authenticator field at `at` of `buf`: nonce, then the AEAD of `plaintext` with everything
 * before `at` as associated data. Returns the end of the field.
 */
export function writeAuthenticator(
  buf: Uint8Array,
  at: number,
  key: AeadKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
): number {
  const sealed = ready(key).seal(nonce, buf.subarray(0, at), plaintext);
  const len = 4 + 4 + pad4(nonce.length) + pad4(sealed.length);
  buf.fill(0, at, at + len);
  writeFieldHeader(buf, at, EF_NTS_AUTHENTICATOR, len);
  buf[at + 4] = nonce.length >> 8;
  buf[at + 5] = nonce.length & 0xff;
  buf[at + 6] = sealed.length >> 8;
  buf[at + 7] = sealed.length & 0xff;
  buf.set(nonce, at + 8);
  buf.set(sealed, at + 8 + pad4(nonce.length));
  return at + len;
}

/**
 * The NTS part of an authenticated reply (RFC 8915 §5.7), after the 48-octet header already in `buf` (its
 * transmit timestamp written: the authenticator covers it): the request's Unique Identifier, then the
 * authenticator with the new cookies encrypted under the server-to-client key. `req` is the request as
 * received (buf's own octets after the header may already be overwritten). Returns the reply's length.
 */
export function writeNtsReply(
  buf: Uint8Array,
  req: Uint8Array,
  view: NtsRequestView,
  s2c: AeadKey,
  cookies: readonly Uint8Array[],
  nonce: Uint8Array,
): number {
  const at = copyUid(buf, req, view);
  return writeAuthenticator(buf, at, s2c, nonce, cookieFields(cookies));
}

/**
 * The NTS part of an NTS NAK (RFC 8915 §5.7): after a kiss-o'-death header with code NTSN, the request's
 * Unique Identifier and nothing else. Returns the length.
 */
export function writeNtsNak(buf: Uint8Array, req: Uint8Array, view: NtsRequestView): number {
  return copyUid(buf, req, view);
}

// ---- the client's side ------------------------------------------------------------------------------------

/**
 * An NTS request (RFC 8915 §5.7): `header` (48 octets, its transmit timestamp set), the Unique Identifier,
 * the cookie, `placeholders` placeholders as long as the cookie, and the authenticator under the
 * client-to-server key.
 */
export function buildNtsRequest(
  header: Uint8Array,
  uid: Uint8Array,
  cookie: Uint8Array,
  placeholders: number,
  c2s: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  const cookieField = COOKIE_FIELD_OVERHEAD + pad4(cookie.length);
  const uidField = COOKIE_FIELD_OVERHEAD + pad4(uid.length);
  const authField = 4 + 4 + pad4(nonce.length) + pad4(SIV_TAG_LENGTH);
  const total = NTP_HEADER_LENGTH + uidField + cookieField * (1 + placeholders) + authField;
  if (total > NTP_MAX_PACKET_LENGTH) {
    throw new NtsError(
      "ERR_NTS_REQUEST",
      `an NTS request of ${total} octets is longer than the ${NTP_MAX_PACKET_LENGTH} a server accepts: fewer placeholders`,
    );
  }
  const buf = new Uint8Array(total);
  buf.set(header.subarray(0, NTP_HEADER_LENGTH));
  let at = NTP_HEADER_LENGTH;
  writeFieldHeader(buf, at, EF_UNIQUE_IDENTIFIER, uidField);
  buf.set(uid, at + 4);
  at += uidField;
  writeFieldHeader(buf, at, EF_NTS_COOKIE, cookieField);
  buf.set(cookie, at + 4);
  at += cookieField;
  for (let i = 0; i < placeholders; i++) {
    writeFieldHeader(buf, at, EF_COOKIE_PLACEHOLDER, cookieField);
    at += cookieField;
  }
  writeAuthenticator(buf, at, c2s, nonce, new Uint8Array(0));
  return buf;
}

/** What the client made of a reply to its NTS request. */
export type NtsReplyCheck =
  | { readonly ok: true; readonly cookies: Uint8Array[] }
  | { readonly ok: false; readonly nak: boolean; readonly reason: string };

/**
 * Checks a reply to an NTS request (RFC 8915 §5.7, the client's rules): it must echo our Unique Identifier
 * and carry an authenticator that opens under the server-to-client key, with every field that matters
 * before it; the cookies are read from the decrypted plaintext. An unauthenticated kiss-o'-death NTSN with
 * our Unique Identifier is an NTS NAK (`nak`: the cookies are no good, run NTS-KE again).
 */
export function checkNtsReply(reply: Uint8Array, uid: Uint8Array, s2c: Uint8Array): NtsReplyCheck {
  if (reply.length < NTP_HEADER_LENGTH) return { ok: false, nak: false, reason: "shorter than a header" };
  let pos = NTP_HEADER_LENGTH;
  let uidSeen = false;
  while (reply.length - pos >= 16) {
    const type = u16(reply, pos);
    const len = u16(reply, pos + 2);
    if (len < 16 || (len & 3) !== 0 || len > reply.length - pos)
      return { ok: false, nak: false, reason: "bad extension field" };
    const body = reply.subarray(pos + 4, pos + len);
    if (type === EF_UNIQUE_IDENTIFIER) {
      if (uidSeen || body.length < uid.length || !equal(body.subarray(0, uid.length), uid))
        return { ok: false, nak: false, reason: "unique identifier missing or not ours" };
      uidSeen = true;
    } else if (type === EF_NTS_AUTHENTICATOR) {
      if (!uidSeen) return { ok: false, nak: false, reason: "authenticator before the unique identifier" };
      const nonceLength = u16(body, 0);
      const ctLength = u16(body, 2);
      if (4 + pad4(nonceLength) + pad4(ctLength) > body.length)
        return { ok: false, nak: false, reason: "bad authenticator" };
      const nonce = body.subarray(4, 4 + nonceLength);
      const ct = body.subarray(4 + pad4(nonceLength), 4 + pad4(nonceLength) + ctLength);
      const plain = new SivKey(s2c).open(nonce, reply.subarray(0, pos), ct);
      if (plain === null) return { ok: false, nak: false, reason: "authenticator does not verify" };
      const cookies = readCookieFields(plain);
      if (cookies === null) return { ok: false, nak: false, reason: "encrypted fields malformed" };
      return { ok: true, cookies };
    }
    pos += len;
  }
  const kiss = reply[1] === 0 && u16(reply, 12) === 0x4e54 && u16(reply, 14) === 0x534e; // "NTSN"
  if (kiss && uidSeen)
    return { ok: false, nak: true, reason: "NTS NAK: the server could not use our cookie" };
  return { ok: false, nak: false, reason: uidSeen ? "no authenticator" : "no unique identifier" };
}

function readCookieFields(plain: Uint8Array): Uint8Array[] | null {
  const cookies: Uint8Array[] = [];
  let pos = 0;
  while (pos < plain.length) {
    if (plain.length - pos < 4) return null;
    const type = u16(plain, pos);
    const len = u16(plain, pos + 2);
    if (len < 4 || (len & 3) !== 0 || len > plain.length - pos) return null;
    if (type === EF_NTS_COOKIE) cookies.push(plain.slice(pos + 4, pos + len));
    pos += len;
  }
  return cookies;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
