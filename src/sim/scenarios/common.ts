// What every scenario shares: its options, its shape (a simulated run that reports the paper's figures
// beside the simulated ones, and a live plan: the same kinds of clients scaled to one real server over
// loopback), and the helper that runs one simulation with the progress bar.

import type { Config } from "../../config/index.ts";
import { Simulation, type SimulationOptions, type SimulationResult } from "../engine.ts";
import type { Population } from "../population.ts";
import type { ProgressSink } from "../progress.ts";
import type { ScenarioReport } from "../report.ts";

export interface ScenarioOptions {
  seed: number;
  /** Multiplies the size of the multitudes (mice, scripts, burstmakers, routers); 1 = the paper's. */
  scale: number;
  /** Seconds of virtual time per run, instead of the scenario's default. */
  duration?: number;
  /** The configuration every simulated server starts from (a scenario may change a few keys, and says so). */
  config: Config;
  progress?: ProgressSink;
}

/** Clients for `ntpshield load`: real sockets, real time, one real server. */
export interface LivePlan {
  description: string;
  populations: Population[];
  /** Populations whose replies their own firewall throws away (the §3 routers' misconfiguration). */
  replyBlocked: string[];
}

export interface Scenario {
  name: string;
  title: string;
  /** The paper's sections it reproduces. */
  sections: string;
  /** One paragraph: what it shows. */
  about: string;
  defaultDuration: number;
  run(o: ScenarioOptions): ScenarioReport;
  /** The live plan, with `scale` multiplying its (already small) client counts. */
  live(scale: number): LivePlan;
}

export interface RunOutput {
  sim: Simulation;
  result: SimulationResult;
  wallMs: number;
}

/** Builds a Simulation, adds the populations, runs it with the progress bar, times it. */
export function simulate(
  label: string,
  options: Omit<SimulationOptions, "onProgress">,
  populations: Population[],
  progress?: ProgressSink,
): RunOutput {
  const sim = new Simulation({
    ...options,
    onProgress: progress ? (done) => progress.update(label, done) : undefined,
  });
  for (const p of populations) sim.add(p);
  const t0 = performance.now();
  const result = sim.run();
  const wallMs = performance.now() - t0;
  progress?.finish();
  return { sim, result, wallMs };
}

/** Checks the scale option. */
export function checkScale(scale: number): number {
  if (!(scale > 0 && scale <= 100))
    throw new RangeError(`scale must be a number above 0 and at most 100, got ${scale}`);
  return scale;
}

/** Mean of the values of `a` in bins [from, to). */
export function meanOf(a: Float64Array, from: number, to: number): number {
  let s = 0;
  let n = 0;
  for (let i = Math.max(0, from); i < Math.min(a.length, to); i++) {
    s += a[i]!;
    n++;
  }
  return n === 0 ? Number.NaN : s / n;
}

/** Largest value of `a` in bins [from, to). */
export function maxOf(a: Float64Array, from: number, to: number): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let i = Math.max(0, from); i < Math.min(a.length, to); i++) if (a[i]! > m) m = a[i]!;
  return m;
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A series divided by the bin width: counts per bin -> packets per second. */
export function perSecond(a: Float64Array, binSeconds: number): number[] {
  return Array.from(a, (v) => v / binSeconds);
}
