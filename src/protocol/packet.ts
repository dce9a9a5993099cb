// The NTP packet (RFC 5905 §7.3): a 48-octet header, then in NTPv4 zero or more extension fields
// (RFC 7822), then an optional legacy MAC (RFC 5905 §7.3, RFC 1305 Appendix C).
//
// What follows the header, and how a receiver tells extension fields from a MAC (RFC 7822 §3, the RFC 5905
// §7.5 erratum EID 3627, and the parser of RFC 5906 §10, which all come to this):
//   1. Let rest = octets after the header (or after the last field parsed).
//   2. NTPv4 only: while rest > 24 (longer than any MAC), an extension field starts here. Its 16-bit length
//      counts the whole field, header included; it must be >= 16, a multiple of 4, and <= rest.
//   3. Then rest must be 0 (no MAC), 4 (crypto-NAK: key ID 0 alone), 20 (key ID + MD5) or 24 (key ID +
//      SHA-1). For NTPv1-v3, which have no extension fields, this is the only rule.
// Why the RFC asks that the last field be >= 28 octets when no MAC follows: a 16-24 octet trailing field
// would leave rest <= 24 at step 2 and be read as a MAC. The same reasoning gives the sender's rule we
// enforce in encodePacket: the last field plus the MAC after it must exceed 24 octets, i.e. the last field
// is >= 28 octets with no MAC and >= 24 with a crypto-NAK (any length >= 16 before a 20/24-octet MAC).
//
// Before any of that: the whole packet is 48..NTP_MAX_PACKET_LENGTH (1096) octets, version 1..4, and a
// multiple of 4 octets long (every field and MAC is whole 32-bit words). Checks run in that order and the
// first failure is the one reported. Mode is not checked here: mode 0 is a client in NTPv1 (RFC 1059
// leaves it unspecified and ntpd/chrony answer it), so what to do with each mode is the caller's decision.
// Mode 6/7 packets (ntpq/ntpdc control) have formats of their own and are judged by these rules all the
// same; a control request under 48 octets reports ERR_NTP_TOO_SHORT.

import {
  EXTENSION_HEADER_LENGTH,
  EXTENSION_MIN_LENGTH,
  MAC_CRYPTO_NAK_LENGTH,
  MAC_MAX_LENGTH,
  MAC_MD5_LENGTH,
  MAC_SHA1_LENGTH,
  NTP_HEADER_LENGTH,
  NTP_MAX_PACKET_LENGTH,
  NTP_VERSION_MAX,
  NTP_VERSION_MIN,
  OFF_ORIGIN_TS,
  OFF_RECEIVE_TS,
  OFF_REF_TS,
  OFF_TRANSMIT_TS,
} from "./constants.ts";
import {
  DECODE_BAD_EXTENSION_LENGTH,
  DECODE_BAD_LENGTH,
  DECODE_BAD_MAC_LENGTH,
  DECODE_BAD_VERSION,
  DECODE_OK,
  DECODE_TOO_LONG,
  DECODE_TOO_SHORT,
  decodeErrorName,
  NtpDecodeError,
  NtpValueError,
} from "./errors.ts";
import { type NtpTimestamp, readNtpTimestamp, writeNtpTimestamp } from "./timestamp.ts";

/** RFC 7822 extension field. `value` holds everything after the 4-octet header, padding included. */
export type ExtensionField = { readonly type: number; readonly value: Uint8Array };

/** Legacy MAC: a 32-bit key identifier and a 0 (crypto-NAK), 16 (MD5) or 20 (SHA-1) octet digest. */
export type Mac = { readonly keyId: number; readonly digest: Uint8Array };

export interface NtpPacket {
  /** 2 bits: LEAP_* */
  readonly leap: number;
  /** 3 bits: 1..4 in any packet we decode or encode */
  readonly version: number;
  /** 3 bits: MODE_* */
  readonly mode: number;
  /** 0..255; 0 in a reply is a kiss-o'-death */
  readonly stratum: number;
  /** Signed log2 seconds (int8) */
  readonly poll: number;
  /** Signed log2 seconds (int8) */
  readonly precision: number;
  /** Raw 16.16 short format (uint32); see shortToSeconds */
  readonly rootDelay: number;
  /** Raw 16.16 short format (uint32) */
  readonly rootDispersion: number;
  /** uint32; see refIdToString */
  readonly refId: number;
  readonly referenceTimestamp: NtpTimestamp;
  readonly originTimestamp: NtpTimestamp;
  readonly receiveTimestamp: NtpTimestamp;
  readonly transmitTimestamp: NtpTimestamp;
  /** Empty unless version 4 */
  readonly extensions: readonly ExtensionField[];
  readonly mac: Mac | null;
}

function isMacLength(n: number): boolean {
  return n === 0 || n === MAC_CRYPTO_NAK_LENGTH || n === MAC_MD5_LENGTH || n === MAC_SHA1_LENGTH;
}

/**
 * HOT PATH. Validates the datagram in buf[0..length) (length is clamped to buf.length) and returns
 * DECODE_OK or the numeric error (errors.ts), allocating nothing. The rules are in the header comment.
 * decodePacket accepts exactly the packets this accepts.
 */
export function checkPacket(buf: Uint8Array, length: number): number {
  const n = Math.min(length, buf.length); // NaN stays NaN and fails the next test
  if (!(n >= NTP_HEADER_LENGTH)) return DECODE_TOO_SHORT;
  if (n > NTP_MAX_PACKET_LENGTH) return DECODE_TOO_LONG;
  const version = (buf[0]! >> 3) & 7;
  if (version < NTP_VERSION_MIN || version > NTP_VERSION_MAX) return DECODE_BAD_VERSION;
  if ((n & 3) !== 0) return DECODE_BAD_LENGTH;
  let pos = NTP_HEADER_LENGTH;
  if (version === 4) {
    // RFC 7822 §3: more than a MAC's worth left means an extension field starts here.
    while (n - pos > MAC_MAX_LENGTH) {
      const len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
      if (len < EXTENSION_MIN_LENGTH || (len & 3) !== 0 || len > n - pos) return DECODE_BAD_EXTENSION_LENGTH;
      pos += len;
    }
  }
  return isMacLength(n - pos) ? DECODE_OK : DECODE_BAD_MAC_LENGTH;
}

function describe(code: number, buf: Uint8Array): string {
  const n = buf.length;
  switch (code) {
    case DECODE_TOO_SHORT:
      return `${n} octets is shorter than the ${NTP_HEADER_LENGTH}-octet NTP header`;
    case DECODE_TOO_LONG:
      return `${n} octets is longer than the ${NTP_MAX_PACKET_LENGTH}-octet limit`;
    case DECODE_BAD_VERSION:
      return `NTP version ${(buf[0]! >> 3) & 7} is not 1-4`;
    case DECODE_BAD_LENGTH:
      return `${n} octets is not a whole number of 32-bit words`;
    case DECODE_BAD_EXTENSION_LENGTH:
      return "an extension field's length is under 16, not a multiple of 4, or runs past the end (RFC 7822)";
    default:
      return "the octets after the header/extension fields are not a 4, 20 or 24-octet MAC";
  }
}

function readU16(buf: Uint8Array, offset: number): number {
  return (buf[offset]! << 8) | buf[offset + 1]!;
}

function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/** A plain Uint8Array copy (Buffer#slice would return a view into a buffer the caller may reuse). */
function copy(buf: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(buf.subarray(start, end));
}

function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/**
 * Decodes a whole datagram (all of `buf`) into an NtpPacket, throwing NtpDecodeError (and nothing else) if
 * checkPacket would reject it. Extension values and the MAC digest are copies, so the caller may reuse
 * `buf`. For tools, tests and the client; the server's hot path uses checkPacket and reads fields in place.
 */
export function decodePacket(buf: Uint8Array): NtpPacket {
  const code = checkPacket(buf, buf.length);
  if (code !== DECODE_OK) throw new NtpDecodeError(decodeErrorName(code), describe(code, buf));
  const n = buf.length;
  const first = buf[0]!;
  const version = (first >> 3) & 7;
  const extensions: ExtensionField[] = [];
  let pos = NTP_HEADER_LENGTH;
  if (version === 4) {
    while (n - pos > MAC_MAX_LENGTH) {
      const len = readU16(buf, pos + 2);
      extensions.push({
        type: readU16(buf, pos),
        value: copy(buf, pos + EXTENSION_HEADER_LENGTH, pos + len),
      });
      pos += len;
    }
  }
  let mac: Mac | null = null;
  if (n - pos > 0) mac = { keyId: readU32(buf, pos), digest: copy(buf, pos + 4, n) };
  return {
    leap: first >> 6,
    version,
    mode: first & 7,
    stratum: buf[1]!,
    poll: (buf[2]! << 24) >> 24,
    precision: (buf[3]! << 24) >> 24,
    rootDelay: readU32(buf, 4),
    rootDispersion: readU32(buf, 8),
    refId: readU32(buf, 12),
    referenceTimestamp: readNtpTimestamp(buf, OFF_REF_TS),
    originTimestamp: readNtpTimestamp(buf, OFF_ORIGIN_TS),
    receiveTimestamp: readNtpTimestamp(buf, OFF_RECEIVE_TS),
    transmitTimestamp: readNtpTimestamp(buf, OFF_TRANSMIT_TS),
    extensions,
    mac,
  };
}

function fieldError(message: string): NtpValueError {
  return new NtpValueError("ERR_NTP_INVALID_FIELD", message);
}

function requireInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max)
    throw fieldError(`${name} ${v} is not an integer in ${min}..${max}`);
}

function requireTimestamp(name: string, ts: NtpTimestamp): void {
  requireInt(`${name}.seconds`, ts.seconds, 0, 0xffffffff);
  requireInt(`${name}.fraction`, ts.fraction, 0, 0xffffffff);
}

/**
 * Checks that `p` encodes to octets that checkPacket accepts and decodePacket reads back as `p`; returns
 * the encoded length. Throws NtpValueError naming the first offending field.
 */
export function encodedLength(p: NtpPacket): number {
  requireInt("leap", p.leap, 0, 3);
  requireInt("version", p.version, NTP_VERSION_MIN, NTP_VERSION_MAX);
  requireInt("mode", p.mode, 0, 7);
  requireInt("stratum", p.stratum, 0, 255);
  requireInt("poll", p.poll, -128, 127);
  requireInt("precision", p.precision, -128, 127);
  requireInt("rootDelay", p.rootDelay, 0, 0xffffffff);
  requireInt("rootDispersion", p.rootDispersion, 0, 0xffffffff);
  requireInt("refId", p.refId, 0, 0xffffffff);
  requireTimestamp("referenceTimestamp", p.referenceTimestamp);
  requireTimestamp("originTimestamp", p.originTimestamp);
  requireTimestamp("receiveTimestamp", p.receiveTimestamp);
  requireTimestamp("transmitTimestamp", p.transmitTimestamp);
  let total = NTP_HEADER_LENGTH;
  const exts = p.extensions;
  if (exts.length > 0 && p.version !== 4)
    throw fieldError(`extension fields need NTPv4, not version ${p.version}`);
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]!;
    requireInt(`extensions[${i}].type`, e.type, 0, 0xffff);
    const len = EXTENSION_HEADER_LENGTH + e.value.length;
    if (len < EXTENSION_MIN_LENGTH || len % 4 !== 0 || len > 0xffff) {
      throw fieldError(
        `extensions[${i}] is ${len} octets: must be >= 16, <= 65535 and a multiple of 4 (RFC 7822)`,
      );
    }
    total += len;
  }
  let macLength = 0;
  if (p.mac !== null) {
    requireInt("mac.keyId", p.mac.keyId, 0, 0xffffffff);
    macLength = 4 + p.mac.digest.length;
    if (
      macLength !== MAC_CRYPTO_NAK_LENGTH &&
      macLength !== MAC_MD5_LENGTH &&
      macLength !== MAC_SHA1_LENGTH
    ) {
      throw fieldError(`mac.digest is ${p.mac.digest.length} octets: must be 0, 16 or 20`);
    }
    total += macLength;
  }
  const last = exts[exts.length - 1];
  if (last !== undefined && EXTENSION_HEADER_LENGTH + last.value.length + macLength <= MAC_MAX_LENGTH) {
    // See the header comment: a receiver would read the last field as (part of) a MAC.
    throw new NtpValueError(
      "ERR_NTP_AMBIGUOUS_EXTENSIONS",
      `last extension field of ${EXTENSION_HEADER_LENGTH + last.value.length} octets followed by a ${macLength}-octet MAC` +
        " would be read as a MAC: it must be >= 28 octets with no MAC, >= 24 before a crypto-NAK (RFC 7822 §3)",
    );
  }
  if (total > NTP_MAX_PACKET_LENGTH) {
    throw new NtpValueError("ERR_NTP_PACKET_TOO_LONG", `${total} octets exceeds ${NTP_MAX_PACKET_LENGTH}`);
  }
  return total;
}

/**
 * Encodes `p` into `buf` at `offset` and returns the number of octets written. Throws NtpValueError if a
 * field is out of range, the extension fields are ambiguous (see encodedLength), or `buf` is too small;
 * nothing is written then. What it writes always passes checkPacket.
 */
export function encodePacketInto(p: NtpPacket, buf: Uint8Array, offset = 0): number {
  const total = encodedLength(p);
  if (!Number.isInteger(offset) || offset < 0 || offset + total > buf.length) {
    throw new NtpValueError(
      "ERR_NTP_BUFFER_TOO_SMALL",
      `${total} octets do not fit at offset ${offset} of a ${buf.length}-octet buffer`,
    );
  }
  buf[offset] = (p.leap << 6) | (p.version << 3) | p.mode;
  buf[offset + 1] = p.stratum;
  buf[offset + 2] = p.poll & 0xff;
  buf[offset + 3] = p.precision & 0xff;
  writeU32(buf, offset + 4, p.rootDelay);
  writeU32(buf, offset + 8, p.rootDispersion);
  writeU32(buf, offset + 12, p.refId);
  writeNtpTimestamp(buf, offset + OFF_REF_TS, p.referenceTimestamp);
  writeNtpTimestamp(buf, offset + OFF_ORIGIN_TS, p.originTimestamp);
  writeNtpTimestamp(buf, offset + OFF_RECEIVE_TS, p.receiveTimestamp);
  writeNtpTimestamp(buf, offset + OFF_TRANSMIT_TS, p.transmitTimestamp);
  let pos = offset + NTP_HEADER_LENGTH;
  for (const e of p.extensions) {
    const len = EXTENSION_HEADER_LENGTH + e.value.length;
    buf[pos] = e.type >>> 8;
    buf[pos + 1] = e.type & 0xff;
    buf[pos + 2] = len >>> 8;
    buf[pos + 3] = len & 0xff;
    buf.set(e.value, pos + EXTENSION_HEADER_LENGTH);
    pos += len;
  }
  if (p.mac !== null) {
    writeU32(buf, pos, p.mac.keyId);
    buf.set(p.mac.digest, pos + 4);
    pos += 4 + p.mac.digest.length;
  }
  return pos - offset;
}

/** Encodes `p` into a new Buffer of exactly its length. Throws NtpValueError as encodePacketInto does. */
export function encodePacket(p: NtpPacket): Buffer {
  const buf = Buffer.alloc(encodedLength(p));
  encodePacketInto(p, buf, 0);
  return buf;
}

/**
 * Builds an extension field from its body, zero-padded (RFC 7822 §3) to a multiple of 4 and to at least
 * `minFieldLength` octets including the header: 16 for any field, EXTENSION_MIN_LAST_LENGTH (28) for the
 * last field of a packet without MAC.
 */
export function makeExtensionField(
  type: number,
  body: Uint8Array,
  minFieldLength = EXTENSION_MIN_LENGTH,
): ExtensionField {
  requireInt("type", type, 0, 0xffff);
  let len = EXTENSION_HEADER_LENGTH + body.length;
  if (len < minFieldLength) len = minFieldLength;
  len = (len + 3) & ~3;
  if (len > 0xffff) throw fieldError(`extension field of ${len} octets exceeds 65535`);
  const value = new Uint8Array(len - EXTENSION_HEADER_LENGTH);
  value.set(body, 0);
  return { type, value };
}
