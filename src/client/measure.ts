// One client/server exchange evaluated (RFC 5905 §8): pure arithmetic on the four timestamps, plus the
// checks that make a reply trustworthy. Used by the server when it follows upstream servers, and by the
// client library (source.ts, query.ts), which also builds its requests here and ranks servers by the root
// distance computed here (RFC 5905 §11.2, the quantity the selection algorithm works on).
//
// Era handling (RFC 5905 §6): the 32-bit seconds of a timestamp wrap every 136 years (first on
// 2036-02-07). T2 and T3 are read as the instant nearest to T1, our own clock when we sent, so an exchange
// that straddles the wrap, or that happens in any later era, measures the same offset as one in era 0.

import {
  MODE_CLIENT,
  MODE_SERVER,
  NTP_HEADER_LENGTH,
  NTP_VERSION,
  OFF_ORIGIN_TS,
  OFF_RECEIVE_TS,
  OFF_TRANSMIT_TS,
  readNtpTimestampToUnixMs,
  shortToSeconds,
  writeNtpTimestampFromUnixMsFuzzed,
} from "../protocol/index.ts";
import { REDIRECT_PACKET_LENGTH, writeRedirectPlaceholder } from "../protocol/redirect.ts";
import { type Random, randomU32 } from "./random.ts";

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

/** RFC 5905 §7.2: the frequency tolerance, 15 ppm, by which a sample's dispersion grows with its age. */
export const PHI = 15e-6;
/** RFC 5905 Appendix A.1.1 MINDISP: the least round-trip delay a root distance assumes, seconds. */
export const MINDISP = 0.01;

/** A client request ready to send, and the transmit field a reply must echo as its origin timestamp. */
export interface Request {
  /** 48 octets: NTPv4, mode 3, our poll exponent, everything else zero but the transmit timestamp. */
  packet: Uint8Array;
  /** A view of packet[40..48): what evaluateReply compares the reply's origin timestamp with. */
  transmit: Uint8Array;
}

/**
 * Builds a client request. Its transmit timestamp carries our clock's seconds (`wallMs`) and a fraction of
 * 32 random bits: a reply or kiss-o'-death is ours only if it echoes all 64 bits, which an off-path
 * attacker must guess (RFC 5905 §8; RFC 8633 §3.2), and the paper's redirection (§8, §9) matches a reply
 * from another address by the same "very fine-grained value". The offset is computed from the T1 we
 * record, not from this field, so the random fraction costs no accuracy. `pollExponent` is the log2 of our
 * current interval, which a server may use to size its reply or kiss (RFC 5905 §7.3).
 */
export function buildRequest(
  wallMs: number,
  random: Random,
  pollExponent: number,
  redirectRoom = false,
): Request {
  // With redirectRoom, the redirection field's placeholder follows the header: the room a server needs to
  // name another server without its reply growing beyond the request (src/protocol/redirect.ts, §8).
  const packet = new Uint8Array(redirectRoom ? REDIRECT_PACKET_LENGTH : NTP_HEADER_LENGTH);
  if (redirectRoom) writeRedirectPlaceholder(packet);
  packet[0] = (NTP_VERSION << 3) | MODE_CLIENT; // leap 0: RFC 5905 leaves it unused in requests
  packet[2] = Math.max(0, Math.min(17, Math.round(pollExponent))) & 0xff;
  // precision 0: the whole 32-bit fraction is replaced by random bits.
  writeNtpTimestampFromUnixMsFuzzed(packet, OFF_TRANSMIT_TS, wallMs, randomU32(random), 0);
  return { packet, transmit: packet.subarray(OFF_TRANSMIT_TS, OFF_TRANSMIT_TS + 8) };
}

/**
 * The root synchronization distance of a sample (RFC 5905 §11.2, Appendix A.5.5.2), in seconds: half the
 * round trip to the primary reference (root delay plus our path, at least MINDISP), plus the server's
 * root dispersion, plus the dispersion of our own measurement (the server's precision and PHI times the
 * sample's age) and the jitter of the source. It bounds how far the server's time can be from the truth
 * as we see it: the selection algorithm builds its correctness intervals from it.
 */
export function rootDistance(sample: Sample, ageS: number, jitterS: number): number {
  const delayS = sample.rootDelay + sample.delayMs / 1000;
  return (
    Math.max(MINDISP, delayS) / 2 +
    sample.rootDispersion +
    2 ** sample.precision +
    PHI * Math.max(0, ageS) +
    jitterS
  );
}
