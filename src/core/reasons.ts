// Every packet the server receives ends in exactly one reason (ARCHITECTURE.md: "one event per packet").
// Reasons are small integers so that the hot path counts them in a typed array without allocating; the
// tables below give each its stable name and the response it implies.

export const RESPONSE_SERVED = 0;
export const RESPONSE_KISSED = 1;
export const RESPONSE_DROPPED = 2;
export type Response = typeof RESPONSE_SERVED | typeof RESPONSE_KISSED | typeof RESPONSE_DROPPED;
export const RESPONSE_NAMES = ["served", "kissed", "dropped"] as const;

// Served.
export const R_SERVED_CLIENT = 0; // mode 3 (or NTPv1 mode 0) answered in mode 4
export const R_SERVED_SYMMETRIC = 1; // mode 1 from an unknown peer answered in mode 2
// Dropped because the packet is not a well-formed NTP packet (RFC 5905 §7.3, RFC 7822).
export const R_MALFORMED_TOO_SHORT = 2;
export const R_MALFORMED_BAD_VERSION = 3;
export const R_MALFORMED_BAD_LENGTH = 4;
export const R_MALFORMED_BAD_EXTENSION = 5;
export const R_MALFORMED_BAD_MAC = 6;
export const R_MALFORMED_TOO_LONG = 7;
export const R_MALFORMED_OTHER = 8;
// Dropped because of the mode: answering these could start loops between servers or amplify traffic.
export const R_DROP_MODE_RESERVED = 9; // mode 0 with a version above 1
export const R_DROP_MODE_PASSIVE = 10; // mode 2: we never asked
export const R_DROP_MODE_SERVER = 11; // mode 4: a reply we never asked for
export const R_DROP_MODE_BROADCAST = 12; // mode 5: we are no broadcast client here
export const R_DROP_MODE_CONTROL = 13; // mode 6: not answered until monitoring defines it
export const R_DROP_MODE_PRIVATE = 14; // mode 7: ntpd's monlist, the CVE-2013-5211 amplifier; never answered
export const R_DROP_SYMMETRIC_DISABLED = 15; // mode 1 while [server] answer-symmetric = false
export const R_DROP_INTERNAL_ERROR = 16; // the shell caught an exception: counted, never fatal

export const REASON_COUNT = 17;

export const REASON_NAMES: readonly string[] = Object.freeze([
  "served_client",
  "served_symmetric",
  "malformed_too_short",
  "malformed_bad_version",
  "malformed_bad_length",
  "malformed_bad_extension",
  "malformed_bad_mac",
  "malformed_too_long",
  "malformed_other",
  "drop_mode_reserved",
  "drop_mode_passive",
  "drop_mode_server",
  "drop_mode_broadcast",
  "drop_mode_control",
  "drop_mode_private",
  "drop_symmetric_disabled",
  "drop_internal_error",
]);

export const REASON_RESPONSE: readonly Response[] = Object.freeze([
  RESPONSE_SERVED,
  RESPONSE_SERVED,
  ...new Array<Response>(REASON_COUNT - 2).fill(RESPONSE_DROPPED),
]);

export function isServed(reason: number): boolean {
  return REASON_RESPONSE[reason] === RESPONSE_SERVED;
}
