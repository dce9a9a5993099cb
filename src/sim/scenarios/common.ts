// What every scenario shares: its options, its shape (a simulated run that reports the paper's figures
// beside the simulated ones, and a live plan: the same kinds of clients scaled to one real server over
// loopback); defineScenario, which wraps a scenario's own part in what every scenario does (check the
// options, time the runs, head the report, table each run's populations); simulate(), one run with the
// scenario's seed, configuration and progress bar; and the clients and figures more than one scenario uses.

import type { Config } from "../../config/index.ts";
import { Simulation, type SimulationOptions, type SimulationResult } from "../engine.ts";
import type { Population } from "../population.ts";
import { NtpdClients } from "../populations/mice.ts";
import type { ProgressSink } from "../progress.ts";
import {
  populationTable,
  type ReportChart,
  type ReportTable,
  type RunSummary,
  ratio,
  runSummary,
  type ScenarioReport,
} from "../report.ts";

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

/** What a scenario's report says of its runs (defineScenario adds the heading, the notes and a table per run). */
export interface ReportBody {
  summary: string[];
  /** The paper's figures beside the simulated ones. */
  table: ReportTable;
  /** More such tables (a second experiment of the scenario), after the first. */
  moreTables?: ReportTable[];
  charts: ReportChart[];
  runs: RunSummary[];
}

/** A scenario's own part; defineScenario adds what every scenario does around it. */
export interface ScenarioSpec<R> {
  name: string;
  title: string;
  sections: string;
  about: string;
  /** What the report says whatever the run: where the figures come from, where the paper disagrees. */
  notes: readonly string[];
  defaultDuration: number;
  /** The shortest run it accepts, and why that long (for the error, when the reason is not obvious). */
  minDuration: number;
  minDurationWhy?: string;
  /** The simulated runs, and whatever the report needs from them; timed as the report's wallMs. */
  runs(o: ScenarioOptions, duration: number): R;
  /** The paper's figures beside the runs'. */
  report(runs: R, o: ScenarioOptions, duration: number): ReportBody;
  /** The live plan; `n` scales one of its client counts (never below one client). */
  live(n: (count: number) => number, scale: number): LivePlan;
}

/**
 * A Scenario from its own part: checks the options, times the runs, heads the report, and ends its tables
 * with a table of each run's populations.
 */
export function defineScenario<R>(spec: ScenarioSpec<R>): Scenario {
  const { name, title, sections } = spec;
  return {
    name,
    title,
    sections,
    about: spec.about,
    defaultDuration: spec.defaultDuration,
    run(o: ScenarioOptions): ScenarioReport {
      checkScale(o.scale);
      const duration = o.duration ?? spec.defaultDuration;
      if (duration < spec.minDuration) {
        const why = spec.minDurationWhy === undefined ? "" : ` (${spec.minDurationWhy})`;
        throw new RangeError(`${name} needs a duration of at least ${spec.minDuration} s${why}`);
      }
      const t0 = performance.now();
      const runs = spec.runs(o, duration);
      const wallMs = performance.now() - t0;
      const body = spec.report(runs, o, duration);
      return {
        format: 1,
        scenario: name,
        title,
        sections,
        seed: o.seed,
        scale: o.scale,
        summary: body.summary,
        tables: [body.table, ...(body.moreTables ?? []), ...body.runs.map((r) => populationTable(r))],
        charts: body.charts,
        notes: [...spec.notes],
        runs: body.runs,
        wallMs,
      };
    },
    live(scale: number): LivePlan {
      checkScale(scale);
      return spec.live((count) => Math.max(1, Math.round(count * scale)), scale);
    },
  };
}

/** One run's settings beyond what simulate() takes from the scenario's options (seed, configuration). */
export type RunSettings = Omit<SimulationOptions, "seed" | "config" | "onProgress"> & {
  /** Instead of the scenario's configuration (for a scenario that changes a few keys, and says so). */
  config?: Config;
};

export interface RunOutput {
  sim: Simulation;
  result: SimulationResult;
  wallMs: number;
  /** The run's raw counts for the report, under its label. */
  summary: RunSummary;
  /** Share of the packets arriving at the servers, all populations together, that the call-gap caught. */
  caughtShare: number;
  /** A series of the run as packets per second (counts per bin divided by the bin width). */
  perSecond(series: Float64Array): number[];
}

/**
 * Runs one simulation of a scenario: the scenario's seed and configuration, `settings` for the rest, the
 * populations added in order, the progress bar under `label`; timed.
 */
export function simulate(
  label: string,
  o: ScenarioOptions,
  settings: RunSettings,
  populations: Population[],
): RunOutput {
  const progress = o.progress;
  const sim = new Simulation({
    ...settings,
    seed: o.seed,
    config: settings.config ?? o.config,
    onProgress: progress ? (done) => progress.update(label, done) : undefined,
  });
  for (const p of populations) sim.add(p);
  const t0 = performance.now();
  const result = sim.run();
  const wallMs = performance.now() - t0;
  progress?.finish();
  let caught = 0;
  let arrived = 0;
  for (const p of result.populations) {
    caught += p.caught;
    arrived += p.arrived;
  }
  const bin = result.series.binSeconds;
  return {
    sim,
    result,
    wallMs,
    summary: runSummary(label, result, wallMs),
    caughtShare: ratio(caught, arrived),
    perSecond: (series) => Array.from(series, (v) => v / bin),
  };
}

/** The live plans' polite ntpd clients: 16 s rising to 64 s, ntpd's 64 to 1,024 s compressed. */
export function liveMice(count: number): NtpdClients {
  return new NtpdClients("mice", { count, minPoll: 16, maxPoll: 64, startWithin: 4 });
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
