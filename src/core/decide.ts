// The decision core: a request's bytes and the server's state in, a reason out; and, for a request that is
// served, the reply written over the request's own buffer. No I/O, no clock reads, no allocation: the shell
// hands in the receive time and stamps the transmit time itself, as late as it can (RFC 5905 §8).
//
// Writing the reply in place has a second purpose: a reply can never be longer than its request, because
// it lives in the request's bytes (no amplification, MISSION.md part 1).

import {
  checkPacket,
  DECODE_BAD_EXTENSION_LENGTH,
  DECODE_BAD_LENGTH,
  DECODE_BAD_MAC_LENGTH,
  DECODE_BAD_VERSION,
  DECODE_OK,
  DECODE_TOO_LONG,
  DECODE_TOO_SHORT,
  MODE_BROADCAST,
  MODE_CLIENT,
  MODE_CONTROL,
  MODE_PRIVATE,
  MODE_RESERVED,
  MODE_SERVER,
  MODE_SYMMETRIC_ACTIVE,
  MODE_SYMMETRIC_PASSIVE,
  NTP_HEADER_LENGTH,
  OFF_ORIGIN_TS,
  OFF_RECEIVE_TS,
  OFF_REF_TS,
  OFF_TRANSMIT_TS,
  POLL_MAX,
  POLL_MIN,
  secondsToShort,
  writeNtpTimestampFromCell,
  writeNtpTimestampFromUnixMs,
} from "../protocol/index.ts";
import {
  R_DROP_MODE_BROADCAST,
  R_DROP_MODE_CONTROL,
  R_DROP_MODE_PASSIVE,
  R_DROP_MODE_PRIVATE,
  R_DROP_MODE_RESERVED,
  R_DROP_MODE_SERVER,
  R_DROP_SYMMETRIC_DISABLED,
  R_MALFORMED_BAD_EXTENSION,
  R_MALFORMED_BAD_LENGTH,
  R_MALFORMED_BAD_MAC,
  R_MALFORMED_BAD_VERSION,
  R_MALFORMED_OTHER,
  R_MALFORMED_TOO_LONG,
  R_MALFORMED_TOO_SHORT,
  R_SERVED_CLIENT,
  R_SERVED_SYMMETRIC,
} from "./reasons.ts";
import type { ServeState } from "./serve-state.ts";

function malformedReason(code: number): number {
  switch (code) {
    case DECODE_TOO_SHORT:
      return R_MALFORMED_TOO_SHORT;
    case DECODE_BAD_VERSION:
      return R_MALFORMED_BAD_VERSION;
    case DECODE_BAD_LENGTH:
      return R_MALFORMED_BAD_LENGTH;
    case DECODE_BAD_EXTENSION_LENGTH:
      return R_MALFORMED_BAD_EXTENSION;
    case DECODE_BAD_MAC_LENGTH:
      return R_MALFORMED_BAD_MAC;
    case DECODE_TOO_LONG:
      return R_MALFORMED_TOO_LONG;
    default:
      return R_MALFORMED_OTHER;
  }
}

/**
 * Classifies a received datagram. Returns R_SERVED_* when it must be answered (then call writeReply), or
 * the reason it is dropped. Reads only `buf[0..length)`.
 */
export function decide(buf: Uint8Array, length: number, state: ServeState): number {
  // Control (mode 6, as ntpq sends: a 12-octet header) and private (mode 7) messages have formats of their
  // own; classify them by mode before judging them as time packets, so they are counted as what they are.
  if (length >= 1 && buf.length >= 1) {
    const m = buf[0]! & 7;
    if (m === MODE_CONTROL) return R_DROP_MODE_CONTROL;
    if (m === MODE_PRIVATE) return R_DROP_MODE_PRIVATE;
  }
  const check = checkPacket(buf, length);
  if (check !== DECODE_OK) return malformedReason(check);
  const first = buf[0]!;
  const version = (first >> 3) & 7;
  const mode = first & 7;
  switch (mode) {
    case MODE_CLIENT:
      return R_SERVED_CLIENT;
    case MODE_RESERVED:
      // NTPv1 (RFC 1059) clients may leave the mode unspecified; ntpd and chrony treat them as clients.
      return version === 1 ? R_SERVED_CLIENT : R_DROP_MODE_RESERVED;
    case MODE_SYMMETRIC_ACTIVE:
      return state.answerSymmetric ? R_SERVED_SYMMETRIC : R_DROP_SYMMETRIC_DISABLED;
    case MODE_SYMMETRIC_PASSIVE:
      return R_DROP_MODE_PASSIVE;
    case MODE_SERVER:
      return R_DROP_MODE_SERVER;
    case MODE_BROADCAST:
      return R_DROP_MODE_BROADCAST;
    default:
      return R_DROP_MODE_RESERVED;
  }
}

function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

/**
 * Turns the request in `buf` into its reply, in place: header fields from `state`, origin = the request's
 * transmit timestamp, receive = `receiveMs` (already corrected by state.offsetMs). The transmit timestamp
 * is left for the shell to write with `stampTransmit` just before sending. Returns the reply's length, which
 * is the header only: extension fields and MACs are never echoed.
 */
export function writeReply(buf: Uint8Array, receiveMs: number, state: ServeState): number {
  replyTime[0] = receiveMs;
  return writeReplyAt(buf, replyTime, state);
}

const replyTime = new Float64Array(1);
const refTime = new Float64Array(1);

/**
 * writeReply with the receive time read from `time[0]` (Unix ms): the hot path's form. A double passed as
 * an argument to a function V8 does not inline is boxed, one heap allocation per packet; a typed array is
 * not.
 */
export function writeReplyAt(buf: Uint8Array, time: Float64Array, state: ServeState): number {
  const receiveMs = time[0]!;
  const version = (buf[0]! >> 3) & 7;
  // The reply's mode follows the request's (a leaked or served mode 1 gets mode 2), not the reason.
  const replyMode = (buf[0]! & 7) === MODE_SYMMETRIC_ACTIVE ? MODE_SYMMETRIC_PASSIVE : MODE_SERVER;
  const poll = (buf[2]! << 24) >> 24; // signed log2 seconds
  // Origin timestamp = the request's transmit timestamp, copied byte for byte (RFC 5905 §8): the client
  // matches the reply by these 64 bits, so they must not pass through a float.
  for (let i = 0; i < 8; i++) buf[OFF_ORIGIN_TS + i] = buf[OFF_TRANSMIT_TS + i]!;
  buf[0] = (state.leap << 6) | (version << 3) | replyMode;
  buf[1] = state.stratum;
  buf[2] = Math.max(POLL_MIN, Math.min(poll, POLL_MAX));
  buf[3] = state.precision & 0xff;
  writeU32(buf, 4, secondsToShort(state.rootDelay));
  const age = state.refTimeMs > 0 ? (receiveMs - state.refTimeMs) / 1000 : 0;
  writeU32(buf, 8, secondsToShort(state.rootDispersion + (age > 0 ? age * state.dispersionRate : 0)));
  writeU32(buf, 12, state.refId);
  if (state.refTimeMs > 0) {
    refTime[0] = state.refTimeMs;
    writeNtpTimestampFromCell(buf, OFF_REF_TS, refTime, 0);
  } else for (let i = 0; i < 8; i++) buf[OFF_REF_TS + i] = 0;
  writeNtpTimestampFromCell(buf, OFF_RECEIVE_TS, time, 0);
  return NTP_HEADER_LENGTH;
}

/**
 * Turns the request in `buf` into a kiss-o'-death, in place (RFC 5905 §7.4): leap indicator 3, stratum 0,
 * the kiss code (a KISS_* constant of src/protocol/kiss.ts) as the reference id, and the client's own
 * transmit timestamp as origin, so that the client can match it (and only the client that sent it: paper
 * §11). The other timestamps carry no time of ours: reference is zero and receive and transmit repeat the
 * client's transmit timestamp, as ntpd does, so a client that ignores the kiss still learns nothing from it.
 * Root delay and dispersion are zero, poll echoes the request's (bounded). Returns the length (the header).
 */
export function writeKod(buf: Uint8Array, code: number, state: ServeState): number {
  const version = (buf[0]! >> 3) & 7;
  const replyMode = (buf[0]! & 7) === MODE_SYMMETRIC_ACTIVE ? MODE_SYMMETRIC_PASSIVE : MODE_SERVER;
  const poll = (buf[2]! << 24) >> 24;
  for (let i = 0; i < 8; i++) {
    const t = buf[OFF_TRANSMIT_TS + i]!;
    buf[OFF_ORIGIN_TS + i] = t;
    buf[OFF_RECEIVE_TS + i] = t;
    buf[OFF_REF_TS + i] = 0;
  }
  buf[0] = (3 << 6) | (version << 3) | replyMode;
  buf[1] = 0;
  buf[2] = Math.max(POLL_MIN, Math.min(poll, POLL_MAX));
  buf[3] = state.precision & 0xff;
  writeU32(buf, 4, 0);
  writeU32(buf, 8, 0);
  writeU32(buf, 12, code);
  return NTP_HEADER_LENGTH;
}

/** Writes the transmit timestamp: the last thing done before the datagram leaves. */
export function stampTransmit(buf: Uint8Array, transmitMs: number): void {
  writeNtpTimestampFromUnixMs(buf, OFF_TRANSMIT_TS, transmitMs);
}

/** stampTransmit with the time read from `transmitMs[0]`: the hot path's form (see writeReplyAt). */
export function stampTransmitAt(buf: Uint8Array, transmitMs: Float64Array): void {
  writeNtpTimestampFromCell(buf, OFF_TRANSMIT_TS, transmitMs, 0);
}
