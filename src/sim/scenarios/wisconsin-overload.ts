// The Wisconsin splurge against a server with a capacity, with and without overload control (paper §12's
// proposal; our extension: the paper gives no figure for it). §3: "a traffic splurge can occur with
// amplitude up to 100,000 PPS"; §12: "rather like a rotating power blackout where dial tone is withheld
// for varying periods for varying pools of customers", with the warning that "defective clients might try
// even harder if their packets are not answered, which did in fact happen in the Wisconsin incident".
//
// One server that can send SPLURGE.capacity answers a second. Its mice, ntpd clients settled at polls of
// 64 to 1,024 s, have polled it long enough for it to know them (every one twice). Then 100,000 defective
// routers it has never seen are switched on within a second and retry every second until answered:
// 100,000 PPS. Once without overload control (the server answers what its capacity lets through, and the
// rest is lost at random, as a full socket queue loses it), once with it (the redline set to the capacity:
// mice first, then known clients, then newcomers, the rest withheld by rotating pools). The same seed for
// both, so the clients are the same; only the server differs.
//
// The capacity, 1,000 answers a second, is below the 1,667 PPS the routers send once answered (one poll a
// minute), so the server cannot quiet them by answering them and the splurge lasts, as the real one did
// (§3: the ISP discarded 250,000 PPS on average over a day). A server that can answer more than that
// (§2's 5,000 PPS at half a processor) quiets 100,000 routers in a few tens of seconds, one answer buying a
// minute of silence each, with or without overload control.

import { R_DROP_OVERLOAD } from "../../core/reasons.ts";
import { NtpdClients } from "../populations/mice.ts";
import { Routers } from "../populations/routers.ts";
import {
  fmtInt,
  fmtPct,
  fmtPps,
  type ReportChart,
  type ReportTable,
  type RunSummary,
  ratio,
} from "../report.ts";
import { patchConfig, R_OVER_CAPACITY, SIM_REASON_NAMES } from "../server-model.ts";
import { type ScenarioOptions, simulate } from "./common.ts";

/** The splurge run's sizes at scale 1 (the routers, the mice and the capacity scale together). */
export const SPLURGE = Object.freeze({
  /** Defective routers switched on together: 100,000 PPS while unanswered (§3, the reference rendering). */
  routers: 100_000,
  /** Answers per second the server can send: less than the routers' 1,667 PPS once answered (see above). */
  capacity: 1_000,
  /** The server's mice: ntpd clients settled at 64 to 1,024 s (about 120 PPS in all by the splurge). */
  mice: 50_000,
  /** Seconds of mice alone first: every mouse has polled twice (1,024 s and 5% jitter) and is known. */
  prelude: 2_100,
});

const DROP_OVERLOAD = SIM_REASON_NAMES[R_DROP_OVERLOAD]!;
const DROP_CAPACITY = SIM_REASON_NAMES[R_OVER_CAPACITY]!;

/** Seconds before the splurge that the charts show. */
const CHART_LEAD = 20;

export interface SplurgeRun {
  summary: RunSummary;
  overload: boolean;
  /** Answers per second the server can send. */
  capacity: number;
  /** Seconds of splurge. */
  length: number;
  /** During the splurge: the mice's requests sent and answered, and everybody's. */
  miceSent: number;
  miceAnswered: number;
  allSent: number;
  allAnswered: number;
  /** The routers' requests answered. */
  floodAnswered: number;
  /** Requests withheld by overload control (mice, routers). */
  miceWithheld: number;
  floodWithheld: number;
  /** Answers lost past the capacity (mice, routers). */
  miceDropped: number;
  floodDropped: number;
  /** The worst second's offered load, and the mean over the splurge's last minute. */
  peakOffered: number;
  lastMinuteOffered: number;
  /** The most answered in one second of the splurge. */
  peakAnswered: number;
  /** Seconds of the splurge in which some mouse went unanswered. */
  miceLossSeconds: number;
  /** Per second from CHART_LEAD s before the splurge: offered, and the mice's share answered (%). */
  offered: number[];
  miceServed: number[];
}

/** A share as a percentage with one decimal: 99.4% and 98.6% must not both read "99%". */
function pct1(f: number): string {
  return Number.isFinite(f) ? `${(100 * f).toFixed(1)}%` : "-";
}

function sumFrom(a: Float64Array, from: number): number {
  let s = 0;
  for (let i = from; i < a.length; i++) s += a[i]!;
  return s;
}

/** The splurge's sizes at a scale: never below one client, and a capacity of at least one answer a second. */
export function splurgeSizes(scale: number) {
  return {
    routers: Math.max(1, Math.round(SPLURGE.routers * scale)),
    mice: Math.max(1, Math.round(SPLURGE.mice * scale)),
    capacity: Math.max(1, SPLURGE.capacity * scale),
  };
}

/**
 * One run of the splurge, `length` seconds after the prelude: the server with overload control
 * (`overload`) or without.
 */
export function splurgeRun(label: string, overload: boolean, o: ScenarioOptions, length: number): SplurgeRun {
  const size = splurgeSizes(o.scale);
  const t0 = SPLURGE.prelude;
  const duration = t0 + length;
  // The configuration as it is, but overload control on or off, the redline the capacity (one worker), and
  // the MRU list scaled with the clients, so that a small run keeps the list's proportion to them (at
  // scale 1 the configured list: 100,000 records by default, for 150,000 clients).
  const config = patchConfig(o.config, {
    mru: { maxEntries: Math.max(1, Math.round(o.config.mru.maxEntries * o.scale)) },
    overload: { enabled: overload, redline: overload ? size.capacity : 0 },
  });
  const mice = new NtpdClients(
    "mice",
    { count: size.mice, settled: true },
    "ntpd clients settled at 64 to 1,024 s, backing off, obeying KoD (§2, §4)",
  );
  const routers = new Routers("routers", { count: size.routers, startAt: t0, startWithin: 1 });
  const run = simulate(label, o, { duration, servers: 1, binSeconds: 1, capacity: size.capacity, config }, [
    mice,
    routers,
  ]);
  const s = run.result.series;
  const mSent = s.perPopulation["mice"]!;
  const mAnswered = s.answeredPerPopulation["mice"]!;
  const rAnswered = s.answeredPerPopulation["routers"]!;
  const answered = Array.from(mAnswered, (v, i) => v + rAnswered[i]!);
  const m = run.result.populations.find((p) => p.name === "mice")!;
  const r = run.result.populations.find((p) => p.name === "routers")!;
  let peakOffered = 0;
  let peakAnswered = 0;
  let miceLossSeconds = 0;
  for (let b = t0; b < duration; b++) {
    peakOffered = Math.max(peakOffered, s.offered[b]!);
    peakAnswered = Math.max(peakAnswered, answered[b]!);
    if (mAnswered[b]! < mSent[b]!) miceLossSeconds++;
  }
  const lastFrom = Math.max(t0, duration - 60);
  const from = t0 - CHART_LEAD;
  return {
    summary: run.summary,
    overload,
    capacity: size.capacity,
    length,
    miceSent: sumFrom(mSent, t0),
    miceAnswered: sumFrom(mAnswered, t0),
    allSent: sumFrom(s.offered, t0),
    allAnswered: sumFrom(mAnswered, t0) + sumFrom(rAnswered, t0),
    floodAnswered: r.answered,
    miceWithheld: m.reasons[DROP_OVERLOAD] ?? 0,
    floodWithheld: r.reasons[DROP_OVERLOAD] ?? 0,
    miceDropped: m.reasons[DROP_CAPACITY] ?? 0,
    floodDropped: r.reasons[DROP_CAPACITY] ?? 0,
    peakOffered,
    lastMinuteOffered: sumFrom(s.offered, lastFrom) / (duration - lastFrom),
    peakAnswered,
    miceLossSeconds,
    offered: Array.from(s.offered.subarray(from)),
    miceServed: Array.from(mSent.subarray(from), (v, i) => (v > 0 ? (100 * mAnswered[from + i]!) / v : 100)),
  };
}

export interface SplurgeRuns {
  off: SplurgeRun;
  on: SplurgeRun;
}

/** The splurge twice, `length` seconds each, the same seed: without overload control, then with it. */
export function splurgeRuns(o: ScenarioOptions, length: number): SplurgeRuns {
  return {
    off: splurgeRun("splurge, no overload control", false, o, length),
    on: splurgeRun("splurge, overload control", true, o, length),
  };
}

/** The splurge's figures beside the paper's, which has none for overload control (the title says so). */
export function splurgeTable({ off, on }: SplurgeRuns, scale: number): ReportTable {
  const size = splurgeSizes(scale);
  const both = (f: (r: SplurgeRun) => string) => [f(off), f(on)];
  const rows = [
    [
      "routers switched on together",
      "up to 100,000 PPS if the server or path breaks",
      ...both((r) => `${fmtInt(size.routers)}; worst second ${fmtPps(r.peakOffered)}`),
      `new to the server, each retrying every second until answered; scale x${scale}`,
    ],
    [
      "server capacity",
      "about 5,000 PPS at half a processor (§2)",
      fmtPps(size.capacity),
      `${fmtPps(size.capacity)}, redline ${fmtPps(size.capacity)}`,
      "below the routers' 1,667 PPS once answered, so answering cannot quiet them; past it, answers are lost at random",
    ],
    [
      "mice served during the splurge",
      "none (§12 proposes overload control and gives no figure)",
      ...both((r) => `${pct1(ratio(r.miceAnswered, r.miceSent))} of ${fmtInt(r.miceSent)}`),
      `${fmtInt(size.mice)} ntpd clients settled at 64-1,024 s, all known to the server before the splurge`,
    ],
    [
      "seconds in which some mouse went unanswered",
      "-",
      ...both((r) => `${r.miceLossSeconds} of ${r.length}`),
      "overload control measures each second and acts on the next",
    ],
    [
      "all requests served during the splurge",
      "-",
      ...both((r) => `${fmtPct(ratio(r.allAnswered, r.allSent))} of ${fmtInt(r.allSent)}`),
      "nearly all of them the routers' retries",
    ],
    [
      "routers' requests answered",
      "-",
      ...both((r) => fmtInt(r.floodAnswered)),
      "each answer buys a minute's silence from one router",
    ],
    [
      "offered in the splurge's last minute",
      "-",
      ...both((r) => fmtPps(r.lastMinuteOffered)),
      "a withheld router is unanswered, and a defective one retries every second",
    ],
    [
      "most answered in one second",
      "-",
      ...both((r) => fmtPps(r.peakAnswered)),
      "bounded by the capacity and the tenth of a second of answers its queue holds",
    ],
    [
      "withheld by overload control: mice, routers",
      "-",
      ...both((r) => `${fmtInt(r.miceWithheld)}, ${fmtInt(r.floodWithheld)}`),
      "dropped by class and rotating pool, never kissed",
    ],
    [
      "lost past the capacity: mice, routers",
      "-",
      ...both((r) => `${fmtInt(r.miceDropped)}, ${fmtInt(r.floodDropped)}`),
      "answers the server had no time for",
    ],
  ];
  return {
    title:
      "The splurge against a server with a capacity (§12's overload control: our extension, the paper has no figure)",
    columns: ["figure", "paper", "no overload control", "overload control", "note"],
    rows,
  };
}

/** Per second around the splurge: the mice's share answered, and the load offered. */
export function splurgeCharts({ off, on }: SplurgeRuns): ReportChart[] {
  const x0 = SPLURGE.prelude - CHART_LEAD;
  const marks = [{ x: SPLURGE.prelude, label: "routers switched on" }];
  return [
    {
      title: "The mice's requests answered during the splurge, per second",
      xLabel: "seconds",
      yLabel: "% answered",
      x0,
      dx: 1,
      lines: [
        { name: "no overload control", values: off.miceServed },
        { name: "overload control", values: on.miceServed },
      ],
      marks,
    },
    {
      title: `The splurge at the server, per second (it answers at most ${fmtPps(off.capacity)})`,
      xLabel: "seconds",
      yLabel: "packets per second offered",
      x0,
      dx: 1,
      lines: [
        { name: "no overload control", values: off.offered },
        { name: "overload control", values: on.offered },
      ],
      marks,
    },
  ];
}
