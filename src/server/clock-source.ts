// Where the server's time comes from (MISSION.md part 1). Either the system clock with stratum, refid and
// root distance from configuration (a local-clock server), or upstream servers that ntpshield follows with
// its own well-behaved polling: a secondary server that needs no right to set the clock. Either way the
// result is a ServeState pushed to the workers whenever it changes.

import { randomFillSync, randomInt } from "node:crypto";
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import { isIPv4, isIPv6 } from "node:net";
import { evaluateReply, type Sample } from "../client/measure.ts";
import type { ServeState } from "../core/serve-state.ts";
import { STRATUM_UNSYNCHRONISED, unsynchronisedState } from "../core/serve-state.ts";
import { kissCodeToUint32, refIdFromIPv4, refIdFromIPv6, uint32ToKissCode } from "../protocol/index.ts";
import type { Logger } from "./log.ts";

/** RFC 5905 §7.2: the frequency tolerance, 15 ppm, by which dispersion grows with age. */
export const PHI = 15e-6;
const MAX_POLL_S = 1024;
const REPLY_TIMEOUT_MS = 4000;
const FILTER_LENGTH = 8;

export interface ClockConfig {
  stratum: number;
  refid: string;
  rootDelay: number;
  rootDispersion: number;
  upstream: readonly string[];
  poll: number;
  holdTime: number;
  correctOffset: boolean;
}

export interface ClockDeps {
  cfg: ClockConfig;
  precision: number;
  answerSymmetric: boolean;
  /** Unix ms, sub-ms resolution. */
  now: () => number;
  onChange: (s: ServeState) => void;
  log: Logger;
}

export function createClockSource(deps: ClockDeps): ClockSource {
  return deps.cfg.upstream.length > 0 ? new UpstreamClock(deps) : new StaticClock(deps);
}

export interface ClockSource {
  readonly state: ServeState;
  start(): void;
  stop(): void;
  describe(): Record<string, unknown>;
}

/** "LOCL" -> 0x4c4f434c; "192.0.2.1" -> 0xc0000201. */
export function refIdFromConfig(refid: string): number {
  if (isIPv4(refid)) return refIdFromIPv4(refid);
  return kissCodeToUint32(refid);
}

export class StaticClock implements ClockSource {
  state: ServeState;
  private timer: NodeJS.Timeout | undefined;
  private readonly cfg: ClockConfig;
  private readonly precision: number;
  private readonly answerSymmetric: boolean;
  private readonly now: () => number;
  private readonly onChange: (s: ServeState) => void;

  constructor(deps: ClockDeps) {
    this.cfg = deps.cfg;
    this.precision = deps.precision;
    this.answerSymmetric = deps.answerSymmetric;
    this.now = deps.now;
    this.onChange = deps.onChange;
    this.state = this.build();
  }

  private build(): ServeState {
    return {
      leap: 0,
      stratum: this.cfg.stratum,
      precision: this.precision,
      rootDelay: this.cfg.rootDelay,
      rootDispersion: this.cfg.rootDispersion,
      dispersionRate: 0,
      refId: refIdFromConfig(this.cfg.refid),
      refTimeMs: this.now(),
      offsetMs: 0,
      answerSymmetric: this.answerSymmetric,
    };
  }

  start(): void {
    // The reference time of a local clock is "now": refresh it once a poll interval, as a local
    // reference clock would, so clients do not see an ever older reference.
    this.timer = setInterval(() => {
      this.state = this.build();
      this.onChange(this.state);
    }, 64_000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  describe(): Record<string, unknown> {
    return { source: "local", stratum: this.cfg.stratum, refid: this.cfg.refid };
  }
}

interface Upstream {
  spec: string;
  host: string;
  port: number;
  address: string;
  intervalS: number;
  samples: Sample[];
  timer: NodeJS.Timeout | undefined;
  lastError: string;
  reach: number;
}

export function parseUpstream(spec: string): { host: string; port: number } {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(spec);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : 123 };
  const colons = spec.split(":").length - 1;
  if (colons === 1) {
    const [h, p] = spec.split(":");
    return { host: h!, port: Number(p) };
  }
  return { host: spec, port: 123 };
}

/** The sample the clock filter trusts most: the one with the least delay among the recent ones (§10). */
function bestSample(u: Upstream): Sample | undefined {
  let best: Sample | undefined;
  for (const s of u.samples) if (!best || s.delayMs < best.delayMs) best = s;
  return best;
}

/** RMS of successive offset differences: RFC 5905's peer jitter, in seconds. */
function jitterSeconds(u: Upstream): number {
  if (u.samples.length < 2) return 0;
  let sum = 0;
  for (let i = 1; i < u.samples.length; i++) {
    const d = (u.samples[i]!.offsetMs - u.samples[i - 1]!.offsetMs) / 1000;
    sum += d * d;
  }
  return Math.sqrt(sum / (u.samples.length - 1));
}

export class UpstreamClock implements ClockSource {
  state: ServeState;
  private readonly upstreams: Upstream[];
  private checkTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private selected: Upstream | undefined;
  private readonly cfg: ClockConfig;
  private readonly precision: number;
  private readonly answerSymmetric: boolean;
  private readonly now: () => number;
  private readonly onChange: (s: ServeState) => void;
  private readonly log: Logger;

  constructor(deps: ClockDeps) {
    this.cfg = deps.cfg;
    this.precision = deps.precision;
    this.answerSymmetric = deps.answerSymmetric;
    this.now = deps.now;
    this.onChange = deps.onChange;
    this.log = deps.log;
    this.state = unsynchronisedState(deps.precision, deps.answerSymmetric);
    this.upstreams = deps.cfg.upstream.map((spec) => {
      const { host, port } = parseUpstream(spec);
      return {
        spec,
        host,
        port,
        address: "",
        intervalS: deps.cfg.poll,
        samples: [],
        timer: undefined,
        lastError: "",
        reach: 0,
      };
    });
  }

  start(): void {
    for (const u of this.upstreams) {
      // A random start within the first second: servers restarted together do not poll together.
      this.schedule(u, randomInt(0, 1000));
    }
    this.checkTimer = setInterval(() => this.reselect(), 1000);
    this.checkTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.checkTimer);
    for (const u of this.upstreams) clearTimeout(u.timer);
  }

  describe(): Record<string, unknown> {
    return {
      source: "upstream",
      upstream: this.upstreams.map((u) => u.spec),
      poll: this.cfg.poll,
      holdTime: this.cfg.holdTime,
      correctOffset: this.cfg.correctOffset,
    };
  }

  private schedule(u: Upstream, delayMs: number): void {
    if (this.stopped) return;
    u.timer = setTimeout(() => {
      void this.poll(u).finally(() => {
        // Never faster than the configured poll (at least 64 s); ±1/16 jitter so polls do not lock step.
        const base = u.intervalS * 1000;
        this.schedule(u, base + randomInt(-(base >> 4), (base >> 4) + 1));
      });
    }, delayMs);
    u.timer.unref();
  }

  private async poll(u: Upstream): Promise<void> {
    u.reach = (u.reach << 1) & 0xff;
    let ok = false;
    try {
      // Names are resolved at every poll and one address picked at random (paper §7: DNS rotation only
      // spreads load over clients that look again).
      const addrs = await lookup(u.host, { all: true });
      if (addrs.length === 0) throw new Error("no address");
      const pick = addrs[randomInt(0, addrs.length)]!;
      u.address = pick.address;
      const sample = await this.exchange(pick.address, pick.family === 6 ? 6 : 4, u.port, u.intervalS);
      if ("kiss" in sample) {
        u.lastError = `kiss-o'-death ${sample.kiss}`;
        // RFC 5905 §7.4: RATE means poll less often; DENY/RSTR mean stop using this server.
        if (sample.kiss === "RATE") u.intervalS = Math.min(MAX_POLL_S, u.intervalS * 2);
        this.log.warn("upstream sent kiss-o'-death", { upstream: u.spec, code: sample.kiss });
      } else {
        u.samples.push(sample);
        if (u.samples.length > FILTER_LENGTH) u.samples.shift();
        u.reach |= 1;
        u.lastError = "";
        u.intervalS = this.cfg.poll;
        ok = true;
      }
    } catch (err) {
      u.lastError = (err as Error).message;
    }
    if (!ok) {
      // Unanswered: back off exponentially (paper §3: the Wisconsin routers retried every second).
      u.intervalS = Math.min(MAX_POLL_S, u.intervalS * 2);
      this.log.debug("upstream poll failed", {
        upstream: u.spec,
        error: u.lastError,
        nextPollS: u.intervalS,
      });
    }
    this.reselect();
  }

  private exchange(
    address: string,
    family: 4 | 6,
    port: number,
    intervalS: number,
  ): Promise<Sample | { kiss: string }> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket(family === 6 ? "udp6" : "udp4");
      const request = Buffer.alloc(48);
      request[0] = (0 << 6) | (4 << 3) | 3;
      request[2] = Math.max(6, Math.min(10, Math.round(Math.log2(intervalS))));
      // A random transmit field: it identifies our request and reveals nothing of our clock (RFC 9109 §4 is
      // about ports; chrony does the same with this field for the same reason).
      const cookie = request.subarray(40, 48);
      randomFillSync(cookie);
      let t1 = 0;
      const timer = setTimeout(() => {
        sock.close();
        reject(new Error("no reply"));
      }, REPLY_TIMEOUT_MS);
      sock.on("error", (err) => {
        clearTimeout(timer);
        sock.close();
        reject(err);
      });
      sock.on("message", (msg, rinfo) => {
        const t4 = this.now();
        if (rinfo.address !== address || rinfo.port !== port) return; // not from the server we asked
        const verdict = evaluateReply(msg, cookie, t1, t4);
        if (!verdict.ok && verdict.reason === "origin-mismatch") return; // spoofed or stale: keep waiting
        clearTimeout(timer);
        sock.close();
        if (verdict.ok) resolve(verdict.sample);
        else if (verdict.reason === "kiss") resolve({ kiss: uint32ToKissCode(verdict.kissCode ?? 0) });
        else reject(new Error(`unusable reply: ${verdict.reason}`));
      });
      // Bound to port 0: a random source port per exchange (RFC 9109).
      sock.bind(0, () => {
        t1 = this.now();
        sock.send(request, port, address);
      });
    });
  }

  /** Picks the upstream with the lowest root distance among those heard from within the hold time. */
  private reselect(): void {
    if (this.stopped) return;
    const now = this.now();
    const holdMs = this.cfg.holdTime * 1000;
    let best: Upstream | undefined;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const u of this.upstreams) {
      const s = bestSample(u);
      const latest = u.samples[u.samples.length - 1];
      if (!s || !latest || now - latest.atMs > holdMs) continue;
      const distance = s.rootDelay / 2 + s.rootDispersion + s.delayMs / 2000 + PHI * ((now - s.atMs) / 1000);
      if (distance < bestDistance) {
        bestDistance = distance;
        best = u;
      }
    }
    const next = best ? this.stateFrom(best) : unsynchronisedState(this.precision, this.answerSymmetric);
    if (best !== this.selected) {
      if (best)
        this.log.info("synchronised to upstream", {
          upstream: best.spec,
          address: best.address,
          stratum: next.stratum,
        });
      else if (this.selected)
        this.log.warn("no usable upstream within hold-time: serving leap alarm, stratum 16", {
          holdTime: this.cfg.holdTime,
        });
      this.selected = best;
    }
    if (!sameState(next, this.state)) {
      this.state = next;
      this.onChange(next);
    }
  }

  private stateFrom(u: Upstream): ServeState {
    const s = bestSample(u)!;
    const serverPrecision = 2 ** s.precision;
    const ownPrecision = 2 ** this.precision;
    // RFC 5905 §8 and §11.2: root delay adds the path; root dispersion adds the sample's own dispersion and
    // the jitter; from here it grows at PHI with age (dispersionRate).
    const dispersion = serverPrecision + ownPrecision + PHI * (s.delayMs / 1000);
    return {
      leap: s.leap,
      stratum: Math.min(s.stratum + 1, STRATUM_UNSYNCHRONISED),
      precision: this.precision,
      rootDelay: s.rootDelay + s.delayMs / 1000,
      rootDispersion: s.rootDispersion + dispersion + jitterSeconds(u),
      dispersionRate: PHI,
      refId: isIPv6(u.address) ? refIdFromIPv6(u.address) : refIdFromIPv4(u.address),
      refTimeMs: s.atMs,
      offsetMs: this.cfg.correctOffset ? s.offsetMs : 0,
      answerSymmetric: this.answerSymmetric,
    };
  }
}

function sameState(a: ServeState, b: ServeState): boolean {
  return (
    a.leap === b.leap &&
    a.stratum === b.stratum &&
    a.rootDelay === b.rootDelay &&
    a.rootDispersion === b.rootDispersion &&
    a.refId === b.refId &&
    a.refTimeMs === b.refTimeMs &&
    a.offsetMs === b.offsetMs &&
    a.answerSymmetric === b.answerSymmetric &&
    a.precision === b.precision
  );
}
