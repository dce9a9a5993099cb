// Active redirection in the protocol (paper §8: a server "redirects" a client to another server): an RFC
// 7822 extension field, type REDIRECT_FIELD_TYPE, that names the server the client should use from now on.
//
// Type 0xF5A8: RFC 9748 leaves the field types 0xF000-0xFFFF to experiments (IANA assigns none there); this
// one is away from the experimental types chrony sends (0xF323, 0xF324), so that a chrony peer that meets
// it reads an unknown field and ignores it, as RFC 7822 asks. It is a private experiment of ntpshield's
// fleets, not a standard: both ends must be ntpshield.
//
// The field is 28 octets, the least a last field may be when no MAC follows (RFC 7822 §3, packet.ts):
//   type (2) | length = 28 (2) | family 4 or 6 (1) | 0 (1) | port (2) | address (16: IPv4 as ::ffff:a.b.c.d)
//   | 0 padding (4)
// A reply must never be larger than its request (no amplification: a forged source gains nothing by it):
// the client that follows redirects sends the field in its request with
// family 0 (a placeholder, the room for the answer), and a server writes the answer over it. A request
// without that room is never given the field.
//
// Hot path: hasRedirectRoom and writeRedirectField allocate nothing.

import { NTP_HEADER_LENGTH } from "./constants.ts";

export const REDIRECT_FIELD_TYPE = 0xf5a8;
export const REDIRECT_FIELD_LENGTH = 28;
/** The request and reply length when the field is present: header plus the field. */
export const REDIRECT_PACKET_LENGTH = NTP_HEADER_LENGTH + REDIRECT_FIELD_LENGTH;

/** Writes the placeholder (family 0: "room for a redirection") at `offset` (48 in a request). */
export function writeRedirectPlaceholder(buf: Uint8Array, offset = NTP_HEADER_LENGTH): void {
  buf.fill(0, offset, offset + REDIRECT_FIELD_LENGTH);
  buf[offset] = REDIRECT_FIELD_TYPE >>> 8;
  buf[offset + 1] = REDIRECT_FIELD_TYPE & 0xff;
  buf[offset + 3] = REDIRECT_FIELD_LENGTH;
}

/**
 * Whether a request of `length` octets carries the room for the field: its first extension field (right
 * after the header) is ours, exactly REDIRECT_FIELD_LENGTH long. Anything else (no field, another field
 * first, a MAC) gets no redirection: the reply stays the header alone.
 */
export function hasRedirectRoom(buf: Uint8Array, length: number): boolean {
  if (length < REDIRECT_PACKET_LENGTH) return false;
  const o = NTP_HEADER_LENGTH;
  return (
    buf[o] === REDIRECT_FIELD_TYPE >>> 8 &&
    buf[o + 1] === (REDIRECT_FIELD_TYPE & 0xff) &&
    buf[o + 2] === 0 &&
    buf[o + 3] === REDIRECT_FIELD_LENGTH
  );
}

/**
 * The field's body for a server: family, port and the 16-octet address (IPv4-mapped for IPv4), 24 octets
 * that writeRedirectField copies after the type and length. Made once per configured server.
 */
export function redirectTarget(family: 4 | 6, port: number, address16: Uint8Array): Uint8Array {
  if (address16.length !== 16) throw new RangeError("a redirection names a 16-octet address");
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${port}`);
  const t = new Uint8Array(REDIRECT_FIELD_LENGTH - 4);
  t[0] = family;
  t[2] = port >>> 8;
  t[3] = port & 0xff;
  t.set(address16, 4);
  return t;
}

/** Writes the field naming `target` (from redirectTarget) over the placeholder at 48. */
export function writeRedirectField(buf: Uint8Array, target: Uint8Array): void {
  const o = NTP_HEADER_LENGTH;
  buf[o] = REDIRECT_FIELD_TYPE >>> 8;
  buf[o + 1] = REDIRECT_FIELD_TYPE & 0xff;
  buf[o + 2] = 0;
  buf[o + 3] = REDIRECT_FIELD_LENGTH;
  buf.set(target, o + 4);
}

/** A redirection read from a reply: the family, port and 16-octet address it names. */
export interface RedirectTo {
  family: 4 | 6;
  port: number;
  address16: Uint8Array;
}

/**
 * The redirection a reply carries, or undefined: looks through the extension fields after the header (RFC
 * 7822 §3's walk, stopping where a MAC could begin) for one of ours with family 4 or 6 and a port.
 */
export function readRedirectField(buf: Uint8Array, length = buf.length): RedirectTo | undefined {
  let pos = NTP_HEADER_LENGTH;
  while (length - pos > 24) {
    const type = (buf[pos]! << 8) | buf[pos + 1]!;
    const len = (buf[pos + 2]! << 8) | buf[pos + 3]!;
    if (len < 16 || (len & 3) !== 0 || len > length - pos) return undefined;
    if (type === REDIRECT_FIELD_TYPE && len >= REDIRECT_FIELD_LENGTH) {
      const family = buf[pos + 4]!;
      const port = (buf[pos + 6]! << 8) | buf[pos + 7]!;
      if ((family === 4 || family === 6) && port !== 0) {
        return { family, port, address16: buf.slice(pos + 8, pos + 24) };
      }
      return undefined;
    }
    pos += len;
  }
  return undefined;
}
