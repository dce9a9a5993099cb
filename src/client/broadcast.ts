// The broadcast client (paper §9; RFC 5905 mode 5), pure: time passed in, verdicts returned. The I/O is in
// broadcast-listen.ts.
//
// A broadcast carries only the server's transmit time T3, which arrives at our T4 after the one-way delay
// of the multicast path: offset = T3 - T4 + delay. That delay is not in the packet, and the multicast path
// may differ from the unicast one, so (§9) "the time is first determined using the unicast path, which
// requires a brief packet exchange between the client and server. Once the correct offset applicable to the
// multicast path has been determined, the client reverts to listen-only operation." Here: a broadcast heard
// from a server gives its raw offset T3 - T4; one unicast exchange with that server at once (within
// milliseconds, so the clocks have not moved) gives the true offset; their difference is the broadcast
// path's delay. That is done on `pairs` broadcasts in a row, and the pair least disturbed is kept (the
// least broadcast delay plus half the unicast round trip: a broadcast read late by a busy client, or a slow
// unicast reply, both make it larger); then the delay is added to every later broadcast's raw offset.
//
// The raw offset of successive broadcasts moves only as fast as the two clocks drift apart, unless the path
// itself changed. Each broadcast's raw offset is predicted from the last one and the drift rate measured
// between the last two (at most MAX_FREQ, 500 ppm, RFC 5905 §7.2; before two are known, anything up to
// MAX_FREQ is allowed); one that misses by more than `driftMs` plus PHI (15 ppm) of the interval on two
// broadcasts in a row means the delay estimate no longer holds: the server is recalibrated. A single
// such broadcast is a queueing spike and is not used. Broadcasts from a server the
// client has not calibrated with give no time: they start a calibration (up to `maxServers` at once) and are
// ignored until it succeeds. A server whose calibration failed is not asked again for `retryS`: a forger
// spraying broadcasts with someone else's source address would otherwise make every listening client send
// that address a request per broadcast (the client must not become the attacker's amplifier, paper §3).

import {
  MODE_BROADCAST,
  NTP_HEADER_LENGTH,
  OFF_TRANSMIT_TS,
  readNtpTimestampToUnixMs,
  shortToSeconds,
} from "../protocol/index.ts";
import { unmapAddress } from "./address.ts";
import { PHI, type Sample } from "./measure.ts";

/** RFC 5905 §7.2 MAXFREQ: the most two clocks that both work can drift apart, 500 ppm. */
export const MAX_FREQ = 500e-6;

export interface BroadcastListenerOptions {
  /** A move of the raw offset beyond what the clocks can drift by more than this (ms) triggers recalibration. */
  driftMs: number;
  /** Servers calibrated or being calibrated at once; broadcasts from others are ignored. */
  maxServers: number;
  /** Only these addresses are listened to (empty = any). */
  servers: readonly string[];
  /** Broadcast and unicast pairs per calibration, one unicast exchange each. */
  pairs: number;
  /** Seconds before a server whose calibration failed is asked again. */
  retryS: number;
}

export const BROADCAST_DEFAULTS: BroadcastListenerOptions = {
  driftMs: 10,
  maxServers: 8,
  servers: [],
  pairs: 3,
  retryS: 64,
};

/** A broadcast turned into time: the server's clock minus ours, with the calibrated delay. */
export interface BroadcastSample {
  server: string;
  offsetMs: number;
  /** The broadcast path's one-way delay from the calibration, ms. */
  delayMs: number;
  leap: number;
  stratum: number;
  poll: number;
  rootDelay: number;
  rootDispersion: number;
  refId: number;
  atMs: number;
}

export type BroadcastVerdict =
  | { kind: "sample"; sample: BroadcastSample }
  /** Make one unicast exchange with `server` (then calibratedWith() or calibrationFailed()). */
  | { kind: "calibrate"; server: string; reason: "new-server" | "drift" | "next-pair"; driftMs?: number }
  | { kind: "ignored"; server: string; reason: BroadcastIgnoreReason };

export type BroadcastIgnoreReason =
  | "not-broadcast"
  | "short"
  | "unsynchronised"
  | "not-listened-to"
  | "too-many-servers"
  | "calibration-failed"
  | "calibrating"
  | "spike";

interface ServerState {
  /** "exchanging": a unicast exchange is out; "pairing": waiting for the next broadcast of a calibration. */
  phase: "exchanging" | "pairing" | "listening";
  /** The raw offset (T3 - T4) of the broadcast the exchange out goes with, and its T4. */
  startRawMs: number;
  startAtMs: number;
  /** Pairs measured in this calibration, and the best so far (its delay and its score). */
  pairs: number;
  bestDelayMs: number;
  bestScoreMs: number;
  /** The calibrated one-way delay of the broadcast path, ms. */
  delayMs: number;
  /** The last raw offset accepted, and when. */
  lastRawMs: number;
  lastAtMs: number;
  /** The drift rate between the last two accepted (ms per ms); undefined until two are known. */
  freq: number | undefined;
  /** The raw offset of a broadcast that moved too far, waiting for the next to confirm it. */
  suspectRawMs: number | undefined;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export class BroadcastListener {
  readonly options: BroadcastListenerOptions;
  private readonly servers = new Map<string, ServerState>();
  /** Servers whose calibration failed, and when they may be asked again (Unix ms); at most 4 maxServers. */
  private readonly failed = new Map<string, number>();

  constructor(options: Partial<BroadcastListenerOptions> = {}) {
    this.options = { ...BROADCAST_DEFAULTS, ...options };
  }

  /** The servers calibrated, with their broadcast delay (ms). */
  calibrated(): { server: string; delayMs: number }[] {
    return [...this.servers]
      .filter(([, s]) => s.phase === "listening")
      .map(([server, s]) => ({ server, delayMs: s.delayMs }));
  }

  /** Judges one datagram that arrived at our time `t4Ms` from `from`. */
  onBroadcast(data: Uint8Array, fromAddress: string, t4Ms: number): BroadcastVerdict {
    const server = unmapAddress(fromAddress);
    if (data.length < NTP_HEADER_LENGTH) return { kind: "ignored", server, reason: "short" };
    if ((data[0]! & 7) !== MODE_BROADCAST) return { kind: "ignored", server, reason: "not-broadcast" };
    const leap = data[0]! >> 6;
    const stratum = data[1]!;
    if (leap === 3 || stratum === 0 || stratum > 15)
      return { kind: "ignored", server, reason: "unsynchronised" };
    if (this.options.servers.length > 0 && !this.options.servers.includes(server))
      return { kind: "ignored", server, reason: "not-listened-to" };
    const rawMs = readNtpTimestampToUnixMs(data, OFF_TRANSMIT_TS, t4Ms) - t4Ms;
    const s = this.servers.get(server);
    if (s === undefined) {
      const until = this.failed.get(server);
      if (until !== undefined) {
        if (t4Ms < until) return { kind: "ignored", server, reason: "calibration-failed" };
        this.failed.delete(server);
      }
      if (this.servers.size >= this.options.maxServers)
        return { kind: "ignored", server, reason: "too-many-servers" };
      this.servers.set(server, {
        phase: "exchanging",
        startRawMs: rawMs,
        startAtMs: t4Ms,
        pairs: 0,
        bestDelayMs: 0,
        bestScoreMs: Number.POSITIVE_INFINITY,
        delayMs: 0,
        lastRawMs: rawMs,
        lastAtMs: t4Ms,
        freq: undefined,
        suspectRawMs: undefined,
      });
      return { kind: "calibrate", server, reason: "new-server" };
    }
    if (s.phase === "exchanging") return { kind: "ignored", server, reason: "calibrating" };
    if (s.phase === "pairing") {
      s.phase = "exchanging";
      s.startRawMs = rawMs;
      s.startAtMs = t4Ms;
      return { kind: "calibrate", server, reason: "next-pair" };
    }
    const sinceMs = Math.max(0, t4Ms - s.lastAtMs);
    const predicted = s.lastRawMs + (s.freq ?? 0) * sinceMs;
    const allowance = this.options.driftMs + (s.freq === undefined ? MAX_FREQ : PHI) * sinceMs;
    if (Math.abs(rawMs - predicted) > allowance) {
      // Two in a row, moved the same way: the path changed, so the delay must be measured again.
      if (s.suspectRawMs !== undefined && Math.abs(rawMs - s.suspectRawMs) <= allowance) {
        const driftMs = rawMs - predicted;
        s.phase = "exchanging";
        s.startRawMs = rawMs;
        s.startAtMs = t4Ms;
        s.pairs = 0;
        s.bestScoreMs = Number.POSITIVE_INFINITY;
        s.suspectRawMs = undefined;
        return { kind: "calibrate", server, reason: "drift", driftMs };
      }
      s.suspectRawMs = rawMs;
      return { kind: "ignored", server, reason: "spike" };
    }
    s.suspectRawMs = undefined;
    if (sinceMs > 0) s.freq = Math.max(-MAX_FREQ, Math.min(MAX_FREQ, (rawMs - s.lastRawMs) / sinceMs));
    s.lastRawMs = rawMs;
    s.lastAtMs = t4Ms;
    return {
      kind: "sample",
      sample: {
        server,
        offsetMs: rawMs + s.delayMs,
        delayMs: s.delayMs,
        leap,
        stratum,
        poll: (data[2]! << 24) >> 24,
        rootDelay: shortToSeconds(u32(data, 4)),
        rootDispersion: shortToSeconds(u32(data, 8)),
        refId: u32(data, 12),
        atMs: t4Ms,
      },
    };
  }

  /**
   * The unicast exchange with `server` measured `sample`: one pair. Returns the broadcast delay (ms) once
   * the calibration has its pairs (the server is then listened to), undefined while it waits for the next
   * broadcast, NaN when no exchange was expected.
   */
  calibratedWith(server: string, sample: Sample): number | undefined {
    const s = this.servers.get(unmapAddress(server));
    if (s === undefined || s.phase !== "exchanging") return Number.NaN;
    const delayMs = sample.offsetMs - s.startRawMs;
    const score = delayMs + sample.delayMs / 2;
    if (score < s.bestScoreMs) {
      s.bestScoreMs = score;
      s.bestDelayMs = delayMs;
    }
    if (++s.pairs < this.options.pairs) {
      s.phase = "pairing";
      return undefined;
    }
    s.delayMs = s.bestDelayMs;
    s.phase = "listening";
    s.lastRawMs = s.startRawMs;
    s.lastAtMs = s.startAtMs;
    s.freq = undefined;
    return s.delayMs;
  }

  /**
   * The unicast exchange got no usable reply at our time `nowMs`: forget the server, and ignore its
   * broadcasts for `retryS`; then its next broadcast tries again.
   */
  calibrationFailed(server: string, nowMs: number): void {
    const key = unmapAddress(server);
    this.servers.delete(key);
    // Bounded: the oldest entry goes first (a Map iterates in insertion order).
    if (this.failed.size >= 4 * this.options.maxServers) this.failed.delete(this.failed.keys().next().value!);
    this.failed.delete(key);
    this.failed.set(key, nowMs + this.options.retryS * 1000);
  }
}
