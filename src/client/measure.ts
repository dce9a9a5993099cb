// One client/server exchange evaluated (RFC 5905 §8): pure arithmetic on the four timestamps, plus the
// checks that make a reply trustworthy. Used by the server when it follows upstream servers, and by the
// client library.

import {
  MODE_SERVER,
  NTP_HEADER_LENGTH,
  OFF_ORIGIN_TS,
  OFF_RECEIVE_TS,
  OFF_TRANSMIT_TS,
  readNtpTimestampToUnixMs,
  shortToSeconds,
} from "../protocol/index.ts";

export interface Sample {
  /** Server clock minus ours, ms: ((T2 - T1) + (T3 - T4)) / 2. */
  offsetMs: number;
  /** Round-trip delay minus the server's processing time, ms: (T4 - T1) - (T3 - T2). */
  delayMs: number;
  leap: number;
  version: number;
  stratum: number;
  poll: number;
  precision: number;
  /** Seconds. */
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  /** Our clock when the reply arrived (T4), Unix ms. */
  atMs: number;
}

export type ReplyVerdict =
  | { ok: true; sample: Sample }
  | {
      ok: false;
      reason:
        | "short"
        | "not-server-mode"
        | "origin-mismatch"
        | "kiss"
        | "unsynchronised"
        | "zero-transmit"
        | "bad-stratum";
      kissCode?: number;
    };

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/**
 * Evaluates a reply to a request whose transmit field held `sentTransmit` (8 bytes, usually random: RFC 9109
 * and chrony do not reveal the client's clock there) and which left at our time `t1Ms` and came back at
 * `t4Ms`. A reply whose origin timestamp is not our transmit field is not ours (spoofed or stale).
 */
export function evaluateReply(
  reply: Uint8Array,
  sentTransmit: Uint8Array,
  t1Ms: number,
  t4Ms: number,
): ReplyVerdict {
  if (reply.length < NTP_HEADER_LENGTH) return { ok: false, reason: "short" };
  const mode = reply[0]! & 7;
  if (mode !== MODE_SERVER) return { ok: false, reason: "not-server-mode" };
  for (let i = 0; i < 8; i++) {
    if (reply[OFF_ORIGIN_TS + i] !== sentTransmit[i]) return { ok: false, reason: "origin-mismatch" };
  }
  const leap = reply[0]! >> 6;
  const stratum = reply[1]!;
  const refId = u32(reply, 12);
  // Stratum 0 is a kiss-o'-death (RFC 5905 §7.4): never a time sample.
  if (stratum === 0) return { ok: false, reason: "kiss", kissCode: refId };
  if (leap === 3) return { ok: false, reason: "unsynchronised" };
  if (stratum > 15) return { ok: false, reason: "bad-stratum" };
  if (u32(reply, OFF_TRANSMIT_TS) === 0 && u32(reply, OFF_TRANSMIT_TS + 4) === 0) {
    return { ok: false, reason: "zero-transmit" };
  }
  const t2 = readNtpTimestampToUnixMs(reply, OFF_RECEIVE_TS, t1Ms);
  const t3 = readNtpTimestampToUnixMs(reply, OFF_TRANSMIT_TS, t1Ms);
  return {
    ok: true,
    sample: {
      offsetMs: (t2 - t1Ms + (t3 - t4Ms)) / 2,
      delayMs: Math.max(0, t4Ms - t1Ms - (t3 - t2)),
      leap,
      version: (reply[0]! >> 3) & 7,
      stratum,
      poll: (reply[2]! << 24) >> 24,
      precision: (reply[3]! << 24) >> 24,
      rootDelay: shortToSeconds(u32(reply, 4)),
      rootDispersion: shortToSeconds(u32(reply, 8)),
      refId,
      atMs: t4Ms,
    },
  };
}
