// Broadcast server (RFC 5905 mode 5, paper §9): whether a broadcast is due to go out, and its bytes. Pure,
// as decide.ts: the server's state and the time in, a reason and the packet out. The shell
// (src/server/broadcast.ts) owns the sockets and the timer and stamps the transmit time last.
//
// A broadcast carries what a reply would (leap, stratum, poll, precision, root delay and dispersion aged as
// in a reply, refid, reference time) with no origin or receive timestamp, since nobody asked. A server that
// cannot vouch for its time (leap alarm, stratum 16) does not broadcast at all: a client that only listens
// cannot tell it "not now" the way a reply can, and ntpd stays silent too.

import {
  MODE_BROADCAST,
  NTP_HEADER_LENGTH,
  NTP_VERSION,
  OFF_ORIGIN_TS,
  OFF_RECEIVE_TS,
  OFF_REF_TS,
  POLL_MAX,
  POLL_MIN,
  secondsToShort,
  writeNtpTimestampFromCell,
} from "../protocol/index.ts";
import type { ServeState } from "./serve-state.ts";
import { STRATUM_UNSYNCHRONISED } from "./serve-state.ts";

/** What became of each broadcast that was due (one count per destination per interval). */
export const B_SENT = 0;
export const B_WITHHELD_UNSYNCHRONISED = 1;
export const B_SEND_ERROR = 2;
export const BROADCAST_REASON_COUNT = 3;
export const BROADCAST_REASON_NAMES: readonly string[] = Object.freeze([
  "sent",
  "withheld_unsynchronised",
  "send_error",
]);

/** B_SENT when the server may broadcast now, else why not. */
export function decideBroadcast(state: ServeState): number {
  return state.leap === 3 || state.stratum >= STRATUM_UNSYNCHRONISED ? B_WITHHELD_UNSYNCHRONISED : B_SENT;
}

/** log2 of an interval in seconds, bounded as a packet's poll field is (RFC 5905 §7.3). */
export function pollExponent(intervalS: number): number {
  return Math.max(POLL_MIN, Math.min(POLL_MAX, Math.round(Math.log2(Math.max(1, intervalS)))));
}

function writeU32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}

const refTime = new Float64Array(1);

/**
 * Writes a mode 5 packet into `buf` (at least 48 octets) for the time `nowMs` (Unix ms, corrected by
 * state.offsetMs): the header fields as writeReplyAt writes them, origin and receive zero. The transmit
 * timestamp is left for the shell (stampTransmit). Returns the length, the header only.
 */
export function writeBroadcast(buf: Uint8Array, nowMs: number, state: ServeState, poll: number): number {
  buf[0] = (state.leap << 6) | (NTP_VERSION << 3) | MODE_BROADCAST;
  buf[1] = state.stratum;
  buf[2] = poll & 0xff;
  buf[3] = state.precision & 0xff;
  writeU32(buf, 4, secondsToShort(state.rootDelay));
  const age = state.refTimeMs > 0 ? (nowMs - state.refTimeMs) / 1000 : 0;
  writeU32(buf, 8, secondsToShort(state.rootDispersion + (age > 0 ? age * state.dispersionRate : 0)));
  writeU32(buf, 12, state.refId);
  if (state.refTimeMs > 0) {
    refTime[0] = state.refTimeMs;
    writeNtpTimestampFromCell(buf, OFF_REF_TS, refTime, 0);
  } else for (let i = 0; i < 8; i++) buf[OFF_REF_TS + i] = 0;
  for (let i = 0; i < 8; i++) {
    buf[OFF_ORIGIN_TS + i] = 0;
    buf[OFF_RECEIVE_TS + i] = 0;
  }
  return NTP_HEADER_LENGTH;
}
