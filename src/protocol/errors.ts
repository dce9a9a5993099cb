// Errors of the codec. Network input is judged by numeric codes on the hot path (checkPacket) and by
// NtpDecodeError in tools; both carry the same stable names. Values our own code hands in wrongly (a bad
// field to encode, a malformed address) raise NtpValueError: a bug or a bad configuration, not an attack.

import { CodedError } from "../base/errors.ts";

/** Stable string codes for every way a received packet can be rejected. */
export type DecodeErrorCode =
  | "ERR_NTP_TOO_SHORT"
  | "ERR_NTP_TOO_LONG"
  | "ERR_NTP_BAD_VERSION"
  | "ERR_NTP_BAD_LENGTH"
  | "ERR_NTP_BAD_EXTENSION_LENGTH"
  | "ERR_NTP_BAD_MAC_LENGTH";

// Numeric twins for the hot path: returned by checkPacket, no allocation, switchable.
export const DECODE_OK = 0;
/** Under the 48-octet header. */
export const DECODE_TOO_SHORT = 1;
/** Over NTP_MAX_PACKET_LENGTH (1096 octets). */
export const DECODE_TOO_LONG = 2;
/** Version 0 or 5-7. */
export const DECODE_BAD_VERSION = 3;
/** Length beyond the header is not a multiple of 4 octets. */
export const DECODE_BAD_LENGTH = 4;
/** An RFC 7822 extension field shorter than 16, not a multiple of 4, or running past the end. */
export const DECODE_BAD_EXTENSION_LENGTH = 5;
/** What is left for the MAC is not 0, 4, 20 or 24 octets (or, before NTPv4, anything else follows). */
export const DECODE_BAD_MAC_LENGTH = 6;

const NAMES: readonly DecodeErrorCode[] = [
  "ERR_NTP_TOO_SHORT",
  "ERR_NTP_TOO_LONG",
  "ERR_NTP_BAD_VERSION",
  "ERR_NTP_BAD_LENGTH",
  "ERR_NTP_BAD_EXTENSION_LENGTH",
  "ERR_NTP_BAD_MAC_LENGTH",
];

/** The string code of a numeric decode error. Throws NtpValueError for DECODE_OK or an unknown number. */
export function decodeErrorName(n: number): DecodeErrorCode {
  const name = Number.isInteger(n) && n > 0 ? NAMES[n - 1] : undefined;
  if (name === undefined) throw new NtpValueError("ERR_NTP_INVALID_ARGUMENT", `not a decode error: ${n}`);
  return name;
}

/** The numeric code of a string decode error code (inverse of decodeErrorName). */
export function decodeErrorNumber(code: DecodeErrorCode): number {
  return NAMES.indexOf(code) + 1;
}

/** A received packet that cannot be an NTP packet we accept. */
export class NtpDecodeError extends CodedError<DecodeErrorCode> {}

/** Stable string codes for values our own code passes to the codec out of range. */
export type ValueErrorCode =
  /** A packet field out of its bit width or range (encodePacket). */
  | "ERR_NTP_INVALID_FIELD"
  /** Extension fields/MAC that a receiver could not parse back unambiguously (RFC 7822 §3). */
  | "ERR_NTP_AMBIGUOUS_EXTENSIONS"
  /** The encoded packet would not fit the buffer given. */
  | "ERR_NTP_BUFFER_TOO_SMALL"
  /** The encoded packet would exceed NTP_MAX_PACKET_LENGTH, so no receiver of ours would take it. */
  | "ERR_NTP_PACKET_TOO_LONG"
  /** A kiss code or ASCII refid that is not 1-4 printable ASCII characters. */
  | "ERR_NTP_INVALID_KISS_CODE"
  /** A textual IPv4/IPv6 address that does not parse. */
  | "ERR_NTP_INVALID_ADDRESS"
  /** Any other argument out of range (a time that is not finite, an unknown error number). */
  | "ERR_NTP_INVALID_ARGUMENT";

/** A value handed to the codec by our own code (or configuration) that cannot be encoded. */
export class NtpValueError extends CodedError<ValueErrorCode> {}
