// The simulator's engine: discrete events on virtual time (paper §3-§5, §12; issue 6). Populations of
// clients (population.ts) send requests; a balancer (balancer.ts) spreads them over N simulated servers,
// each running the server's own decision pipeline (server-model.ts); the network may lose a share of the
// requests and replies, or be down for some populations for a while (the Wisconsin incident: "if
// something breaks in the ISP or Wisconsin campus"). Everything random comes from one seed, so a run is
// exactly repeatable.
//
// Time is seconds from 0 (a float); virtual Unix time is startMs + 1000 t. A client's request is decided
// by the server at the moment it is sent and the client learns the outcome at once: the simulated paths
// have no delay, which changes nothing the defences look at (intervals of seconds) and lets one event per
// request suffice. Events are client slots, in one heap per population (queue.ts); the engine takes the
// earliest of the populations' earliest, ties going to the population added first, then to the lower slot.
//
// What is counted: per population, what its clients sent and got, and the server's reason for each of
// its packets; per server, the reasons; per time bin, the traffic offered, arriving, served, kissed,
// dropped and caught by the call-gap, and what each population offered and had answered, for the plots
// and for figures over part of a run.

import type { Config } from "../config/index.ts";
import {
  R_DROP_GAPPED,
  R_DROP_KOD_LIMITED,
  R_KISS_RATE,
  R_SERVED_LEAK,
  RESPONSE_DROPPED,
  RESPONSE_KISSED,
} from "../core/reasons.ts";
import type { Snapshot } from "../survey/snapshot.ts";
import { Balancer, type BalancerKind } from "./balancer.ts";
import { OUT_ANSWERED, OUT_KISSED, OUT_NOTHING, OUT_SKIPPED, type Population } from "./population.ts";
import { EventQueue } from "./queue.ts";
import { Random } from "./random.ts";
import { SIM_REASON_COUNT, SIM_REASON_NAMES, SIM_REASON_RESPONSE, SimServer } from "./server-model.ts";

const MAX_SLOTS = 1 << 24;
const MAX_POPULATIONS = 255;

/** Monday 5 January 2004, 00:00:00 UTC: the paper's time, and on the hour (cron scripts fire at t = 0). */
export const DEFAULT_START_MS = Date.UTC(2004, 0, 5, 0, 0, 0);

/** Where simulated addresses start: 16.0.0.0, far from anything the tests or the live mode use. */
export const SIM_ADDRESS_BASE = 0x10000000;

/** A time the network path is down for some populations (or all): requests, replies or both are lost. */
export interface Outage {
  /** Seconds from the start, [from, to). */
  from: number;
  to: number;
  /** Names of the populations affected; all when omitted. */
  populations?: string[];
  /** "both" (default: the server is unreachable), "request" or "reply" (e.g. a client firewall, §3). */
  direction?: "both" | "request" | "reply";
}

export interface SimulationOptions {
  /** Seed of every random draw of the run. */
  seed: number;
  /** Seconds of virtual time to run. */
  duration: number;
  /** Simulated servers (default 1). */
  servers?: number;
  balancer?: BalancerKind;
  /** Each server's configuration (the [mru], [callgap], [kod], [blocklist], [acl] and [overload] sections matter). */
  config: Config;
  /**
   * Answers each server can send per second; past it, answers are dropped as a full socket queue drops
   * requests (server-model.ts). Default 0: no limit.
   */
  capacity?: number;
  /** Probability that a request, or a reply, is lost on the way (default 0). */
  loss?: { request?: number; reply?: number };
  outages?: Outage[];
  /** Virtual Unix ms of t = 0 (default DEFAULT_START_MS). */
  startMs?: number;
  /** Width of the time bins of the series, seconds (default: duration / 600, at least 1). */
  binSeconds?: number;
  /** Called with the share of virtual time done, every few ten thousand events. */
  onProgress?: (done: number) => void;
}

/** Per-population results. */
export interface PopulationResult {
  name: string;
  description: string;
  elephant: boolean;
  params: Record<string, unknown>;
  sent: number;
  answered: number;
  kissed: number;
  nothing: number;
  kisses: Record<string, number>;
  /** Requests that reached a server, by the server's reason name (only non-zero ones). */
  reasons: Record<string, number>;
  /** Requests the call-gap caught (gapped, kissed RATE, KoD-limited, or let through by the leak). */
  caught: number;
  /** Requests or replies lost in the network (loss or outage). */
  lost: number;
  /** Requests that reached a server. */
  arrived: number;
}

export interface ServerResult {
  name: string;
  received: number;
  served: number;
  kissed: number;
  dropped: number;
  caught: number;
  blocked: number;
  reasons: Record<string, number>;
  mru: {
    capacity: number;
    size: number;
    inserted: number;
    hits: number;
    recycled: number;
    evicted: number;
    refused: number;
  };
}

/** Counts per time bin. */
export interface SimSeries {
  binSeconds: number;
  /** Sent by clients (before any loss): the load offered to the network. */
  offered: Float64Array;
  /** Reached a server. */
  arrived: Float64Array;
  served: Float64Array;
  kissed: Float64Array;
  dropped: Float64Array;
  /** Caught by the call-gap (included in kissed/dropped/served as the core decided). */
  caught: Float64Array;
  /** Sent per population, by population name. */
  perPopulation: Record<string, Float64Array>;
  /** Answered per population (the reply reached the client), by population name. */
  answeredPerPopulation: Record<string, Float64Array>;
}

export interface SimulationResult {
  seed: number;
  duration: number;
  startMs: number;
  servers: number;
  balancer: BalancerKind;
  /** Events processed (requests sent plus skipped wake-ups). */
  events: number;
  /** Requests sent by all populations. */
  packets: number;
  populations: PopulationResult[];
  serverResults: ServerResult[];
  series: SimSeries;
}

/**
 * Whether a reason means the call-gap fired for the packet (whatever was then done with it). A KoD-limited
 * drop can also follow an access-list refusal (noserve + kod); the scenarios have no such rule.
 */
export function isCaughtReason(reason: number): boolean {
  return (
    reason === R_DROP_GAPPED ||
    reason === R_KISS_RATE ||
    reason === R_DROP_KOD_LIMITED ||
    reason === R_SERVED_LEAK
  );
}

// Per reason (the core's and the server model's), as typed arrays for the per-packet path: the response,
// and whether the call-gap fired.
const RESPONSE_OF = Uint8Array.from(SIM_REASON_RESPONSE);
const CAUGHT = Uint8Array.from({ length: SIM_REASON_COUNT }, (_, r) => (isCaughtReason(r) ? 1 : 0));

function reasonRecord(counts: Float64Array): Record<string, number> {
  const out: Record<string, number> = {};
  for (let r = 0; r < SIM_REASON_COUNT; r++) if (counts[r]! > 0) out[SIM_REASON_NAMES[r]!] = counts[r]!;
  return out;
}

interface CompiledOutage {
  from: number;
  to: number;
  pops: Uint8Array | null;
  request: boolean;
  reply: boolean;
}

export class Simulation {
  readonly seed: number;
  readonly duration: number;
  readonly startMs: number;
  readonly binSeconds: number;
  readonly servers: SimServer[];
  readonly balancer: Balancer;
  readonly populations: Population[] = [];
  /** Virtual time of the event being processed, seconds from the start. */
  now = 0;
  events = 0;
  packets = 0;

  private readonly rnd: Random;
  private readonly netRnd: Random;
  // One queue per population, and each population's earliest time: most events come from a few
  // populations (the mice stream is one slot), so they never pay for a large shared heap.
  private queues: EventQueue[] = [];
  private nextTimes = new Float64Array(0);
  private readonly key = new Uint32Array([0, 0, 0xffff, 0]);
  private readonly lossRequest: number;
  private readonly lossReply: number;
  private readonly outageSpecs: Outage[];
  private outages: CompiledOutage[] = [];
  private nextAddress = SIM_ADDRESS_BASE;
  private readonly onProgress: ((done: number) => void) | undefined;
  private started = false;
  private finished = false;
  // Per population (index), per reason: packets that reached a server.
  private popReasons: Float64Array[] = [];
  private popLost: number[] = [];
  private readonly series: SimSeries;
  private readonly bins: number;
  private readonly perBin: number;
  /** series.perPopulation and series.answeredPerPopulation by population index. */
  private popSeries: Float64Array[] = [];
  private popAnswered: Float64Array[] = [];

  constructor(options: SimulationOptions) {
    const { seed, duration } = options;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer from 0 to 4294967295, got ${seed}`);
    }
    if (!(duration > 0 && duration <= 30 * 86400)) {
      throw new RangeError(`duration must be from 0 to 30 days in seconds, got ${duration}`);
    }
    this.seed = seed;
    this.duration = duration;
    this.startMs = options.startMs ?? DEFAULT_START_MS;
    this.rnd = new Random(seed);
    this.netRnd = this.rnd.derive("network");
    const n = options.servers ?? 1;
    this.balancer = new Balancer(options.balancer ?? "round-robin", n, this.rnd.derive("balancer"));
    this.servers = [];
    for (let i = 0; i < n; i++) {
      this.servers.push(
        new SimServer(
          `server-${i + 1}`,
          options.config,
          this.rnd.derive(`server-${i}`),
          this.startMs,
          options.capacity ?? 0,
        ),
      );
    }
    const lr = options.loss?.request ?? 0;
    const lp = options.loss?.reply ?? 0;
    if (!(lr >= 0 && lr <= 1) || !(lp >= 0 && lp <= 1))
      throw new RangeError("loss must be a probability from 0 to 1");
    this.lossRequest = lr;
    this.lossReply = lp;
    this.outageSpecs = options.outages ?? [];
    for (const o of this.outageSpecs) {
      if (!(o.from >= 0 && o.to > o.from))
        throw new RangeError(`outage needs 0 <= from < to, got ${o.from}..${o.to}`);
    }
    this.binSeconds = options.binSeconds ?? Math.max(1, duration / 600);
    if (!(this.binSeconds > 0)) throw new RangeError("binSeconds must be > 0");
    this.bins = Math.max(1, Math.ceil(duration / this.binSeconds));
    this.perBin = 1 / this.binSeconds;
    const bin = () => new Float64Array(this.bins);
    this.series = {
      binSeconds: this.binSeconds,
      offered: bin(),
      arrived: bin(),
      served: bin(),
      kissed: bin(),
      dropped: bin(),
      caught: bin(),
      perPopulation: {},
      answeredPerPopulation: {},
    };
    this.onProgress = options.onProgress;
  }

  /** Adds a population (before run()); gives it its addresses and its own random stream. */
  add(pop: Population): this {
    if (this.started) throw new Error("populations must be added before run()");
    if (this.populations.length >= MAX_POPULATIONS) throw new RangeError("too many populations");
    if (this.populations.some((p) => p.name === pop.name))
      throw new RangeError(`two populations named ${pop.name}`);
    if (pop.slots > MAX_SLOTS) throw new RangeError(`${pop.name}: at most ${MAX_SLOTS} slots`);
    if (pop.server >= this.servers.length) throw new RangeError(`${pop.name}: no server ${pop.server}`);
    pop.addrBase = this.nextAddress;
    // Blocks aligned on /16 boundaries, so that addresses read well in a survey.
    this.nextAddress += Math.ceil(Math.max(1, pop.addresses) / 65536) * 65536;
    if (this.nextAddress > 0xdfffffff)
      throw new RangeError("the populations need more addresses than IPv4 unicast has");
    this.populations.push(pop);
    this.popReasons.push(new Float64Array(SIM_REASON_COUNT));
    this.popLost.push(0);
    const bins = new Float64Array(this.bins);
    this.series.perPopulation[pop.name] = bins;
    this.popSeries.push(bins);
    const answered = new Float64Array(this.bins);
    this.series.answeredPerPopulation[pop.name] = answered;
    this.popAnswered.push(answered);
    return this;
  }

  /** Runs to the end of the duration. */
  run(): SimulationResult {
    if (this.finished) throw new Error("a Simulation runs once");
    this.start();
    const pops = this.populations;
    const queues = this.queues;
    const next = this.nextTimes;
    const n = pops.length;
    const end = this.duration;
    const progressEvery = 0x7fff;
    for (;;) {
      // The earliest population (a handful: a linear scan), then its earliest slot.
      let pi = -1;
      let t = end;
      for (let i = 0; i < n; i++) {
        if (next[i]! < t) {
          t = next[i]!;
          pi = i;
        }
      }
      if (pi < 0) break;
      const p = pops[pi]!;
      const q = queues[pi]!;
      const slot = q.topId();
      this.now = t;
      const outcome = p.emit(slot, t) ? this.deliver(p, pi, t) : OUT_SKIPPED;
      if (outcome !== OUT_SKIPPED) p.record(outcome);
      const after = p.react(slot, t, outcome);
      if (after === Number.POSITIVE_INFINITY) q.pop();
      else if (after > t) q.replaceTop(after);
      else throw new RangeError(`${p.name}: slot ${slot} at t=${t} asked for next time ${after}, not later`);
      next[pi] = q.topTime();
      if ((++this.events & progressEvery) === 0 && this.onProgress) this.onProgress(t / end);
    }
    this.finished = true;
    this.onProgress?.(1);
    return this.result();
  }

  private start(): void {
    this.started = true;
    this.queues = this.populations.map((p) => new EventQueue(Math.min(Math.max(16, p.slots), 1 << 20)));
    this.nextTimes = new Float64Array(this.populations.length).fill(Number.POSITIVE_INFINITY);
    this.outages = this.outageSpecs.map((o) => {
      let pops: Uint8Array | null = null;
      if (o.populations) {
        pops = new Uint8Array(this.populations.length);
        for (const name of o.populations) {
          const i = this.populations.findIndex((p) => p.name === name);
          if (i < 0) throw new RangeError(`outage names an unknown population ${JSON.stringify(name)}`);
          pops[i] = 1;
        }
      }
      const d = o.direction ?? "both";
      return { from: o.from, to: o.to, pops, request: d !== "reply", reply: d !== "request" };
    });
    this.populations.forEach((p, i) => {
      const rnd = this.rnd.derive(`population:${p.name}`);
      p.open({
        rnd,
        duration: this.duration,
        startMs: this.startMs,
        schedule: (slot, t) => {
          if (!(slot >= 0 && slot < p.slots)) throw new RangeError(`${p.name}: no slot ${slot}`);
          if (!(t >= 0)) throw new RangeError(`${p.name}: slot ${slot} scheduled at ${t}`);
          if (t < this.duration) this.queues[i]!.push(t, slot);
        },
      });
      this.nextTimes[i] = this.queues[i]!.topTime();
    });
  }

  /** Whether the path is down for population `pi` at time t, in the request (dir 0) or reply (1) direction. */
  private down(pi: number, t: number, reply: boolean): boolean {
    for (const o of this.outages) {
      if (t < o.from || t >= o.to) continue;
      if (reply ? !o.reply : !o.request) continue;
      if (o.pops === null || o.pops[pi] === 1) return true;
    }
    return false;
  }

  /** One request from population `p` (index pi) at time t: through the network and a server, and back. */
  private deliver(p: Population, pi: number, t: number): number {
    this.packets++;
    const s = this.series;
    let bin = (t * this.perBin) | 0;
    if (bin >= this.bins) bin = this.bins - 1;
    s.offered[bin]!++;
    this.popSeries[pi]![bin]!++;
    const outages = this.outages.length > 0;
    if (
      (outages && this.down(pi, t, false)) ||
      (this.lossRequest > 0 && this.netRnd.float() < this.lossRequest)
    ) {
      this.popLost[pi]!++;
      return OUT_NOTHING;
    }
    const key = this.key;
    key[3] = p.outAddr;
    const server = this.servers[p.server >= 0 ? p.server : this.balancer.pick(key)]!;
    const reason = server.handle(key, p.outPort, this.startMs + t * 1000);
    this.popReasons[pi]![reason]!++;
    s.arrived[bin]!++;
    if (CAUGHT[reason] === 1) s.caught[bin]!++;
    const response = RESPONSE_OF[reason];
    if (response === RESPONSE_DROPPED) {
      s.dropped[bin]!++;
      return OUT_NOTHING;
    }
    if (response === RESPONSE_KISSED) s.kissed[bin]!++;
    else s.served[bin]!++;
    if ((outages && this.down(pi, t, true)) || (this.lossReply > 0 && this.netRnd.float() < this.lossReply)) {
      this.popLost[pi]!++;
      return OUT_NOTHING;
    }
    if (response === RESPONSE_KISSED) {
      p.kiss = server.lastKiss;
      return OUT_KISSED;
    }
    this.popAnswered[pi]![bin]!++;
    return OUT_ANSWERED;
  }

  /** The MRU lists of every server as survey snapshots, taken "at substantially the same time" (§5). */
  snapshots(): Snapshot[] {
    const nowMs = this.startMs + Math.min(this.now, this.duration) * 1000;
    return this.servers.map((s) => s.snapshot(nowMs));
  }

  private result(): SimulationResult {
    const populations = this.populations.map((p, i): PopulationResult => {
      const reasons = this.popReasons[i]!;
      let caught = 0;
      let arrived = 0;
      for (let r = 0; r < SIM_REASON_COUNT; r++) {
        arrived += reasons[r]!;
        if (isCaughtReason(r)) caught += reasons[r]!;
      }
      return {
        name: p.name,
        description: p.description,
        elephant: p.elephant,
        params: p.params(),
        sent: p.counts.sent,
        answered: p.counts.answered,
        kissed: p.counts.kissed,
        nothing: p.counts.nothing,
        kisses: { ...p.counts.kisses },
        reasons: reasonRecord(reasons),
        caught,
        lost: this.popLost[i]!,
        arrived,
      };
    });
    const serverResults = this.servers.map((s): ServerResult => {
      let caught = 0;
      for (let r = 0; r < SIM_REASON_COUNT; r++) if (isCaughtReason(r)) caught += s.reasons[r]!;
      const st = s.defences.mru.stats();
      return {
        name: s.name,
        received: s.received,
        served: s.served,
        kissed: s.kissed,
        dropped: s.dropped,
        caught,
        blocked: s.blocked,
        reasons: reasonRecord(s.reasons),
        mru: {
          capacity: st.capacity,
          size: st.size,
          inserted: st.inserted,
          hits: st.hits,
          recycled: st.recycled,
          evicted: st.evicted,
          refused: st.refused,
        },
      };
    });
    return {
      seed: this.seed,
      duration: this.duration,
      startMs: this.startMs,
      servers: this.servers.length,
      balancer: this.balancer.kind,
      events: this.events,
      packets: this.packets,
      populations,
      serverResults,
      series: this.series,
    };
  }
}
