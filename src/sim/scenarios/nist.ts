// `ntpshield simulate nist`: the NIST survey (paper §5). "The three flagship servers at Boulder [...] A load
// balancer distributes incoming packets to the three machines. [...] The size of the list in each of the
// three machines is limited to about 1,200 entries and the arrival rate is close to 1,000 PPS per machine.
// The lists quickly fill up and a decision must be made either to discard the oldest entry or discard the
// new arrival. This is done on a probabilistic basis [...] new nonduplicate entries are swept out after only
// nine seconds." Then the three lists are retrieved "at substantially the same time" and consolidated.
//
// Here: three simulated servers behind a round-robin balancer, each with an MRU list of 1,200 records and
// 1,000 PPS of arrivals (settled mice plus §5's burstmakers); at the end of the run the three lists are
// snapshotted and handed to the survey code (src/survey/consolidate.ts), the same code `ntpshield survey`
// runs on real servers. Its figures go beside the paper's.
//
// Calibrated: the admission probability (0.15), chosen so that a new record lives about nine seconds, as
// the paper observed (1,200 records / (0.15 x ~900 new clients per second) = 8.9 s). Everything else in the
// survey's table is derived.

import { consolidate, type SurveyBin, type SurveyResult } from "../../survey/consolidate.ts";
import type { BalancerKind } from "../balancer.ts";
import { Burstmakers, PAPER_RATE_TABLE } from "../populations/burstmakers.ts";
import { Elephants } from "../populations/elephants.ts";
import { settledMice } from "../populations/mice.ts";
import { fmtInt, fmtPct, fmtPps, fmtSeconds, type ReportChart, type RunSummary, ratio } from "../report.ts";
import { patchConfig } from "../server-model.ts";
import { defineScenario, liveMice, type ReportBody, type ScenarioOptions, simulate } from "./common.ts";

export const NIST_PAPER = Object.freeze({
  servers: 3,
  mruEntries: 1200,
  ppsPerServer: 1000,
  lifetime: 9,
  windowPackets: 3595,
  windowPps: 400,
  arrivalShare: 0.13,
  burstPackets: 1094,
  bursters: 574,
  burstersPps: 313,
  clientShare: 0.14,
  loadShare: 0.78,
  gappedShare: 0.001,
  byDuration: [
    { label: "under a minute", clients: 379, pps: 214 },
    { label: "under an hour", clients: 189, pps: 93 },
    { label: "over a day", clients: 6, pps: 6 },
  ],
});

/** MRU admission probability for a ~9 s record lifetime at 1,000 PPS per server (see the file comment). */
export const NIST_ADMIT_PROBABILITY = 0.125;

function binRow(bins: readonly SurveyBin[], from: number, to: number | null): SurveyBin | undefined {
  return bins.find((b) => b.from === from && b.to === to);
}

/** Bins added together (clients and rate). */
function sumBins(bins: readonly SurveyBin[]): SurveyBin | undefined {
  if (bins.length === 0) return undefined;
  const sum = { ...bins[0]! };
  for (const b of bins.slice(1)) {
    sum.clients += b.clients;
    sum.packets += b.packets;
    sum.rate += b.rate;
  }
  return sum;
}

function fmtBin(b: SurveyBin | undefined): string {
  return b ? `${fmtInt(b.clients)} (${fmtPps(b.rate)})` : "-";
}

interface NistRun {
  kind: BalancerKind;
  summary: RunSummary;
  survey: SurveyResult;
  burstRateSum: number;
  lifetime: number;
  perServer: number[];
  caughtShare: number;
  arrivals: number[];
  burstmakers: number[];
  caught: number[];
}

/** One run of the Boulder servers behind `kind`, and the survey of their lists at the end. */
function nistRun(kind: BalancerKind, o: ScenarioOptions, duration: number, capacity: number): NistRun {
  const s = o.scale;
  const config = patchConfig(o.config, {
    mru: { maxEntries: capacity, admitProbability: NIST_ADMIT_PROBABILITY },
  });
  const bursters = new Burstmakers("burstmakers", { scale: s });
  const mice = settledMice("mice", NIST_PAPER.servers * NIST_PAPER.ppsPerServer * s - bursters.rate);
  const label = `NIST Boulder, ${kind}`;
  const run = simulate(
    label,
    o,
    { duration, servers: NIST_PAPER.servers, balancer: kind, config, binSeconds: 1 },
    [mice, bursters],
  );
  const { result, sim } = run;
  const snapshots = sim.snapshots();
  const survey = consolidate(snapshots, { top: 1_000_000 });
  // The paper's "bursters account for about 313 PPS" matches the sum of the bursters' own rates (574
  // clients at 0.55 PPS), not their packets in the 9 s window (1,094 packets, 122 PPS): both are shown.
  let burstRateSum = 0;
  for (const c of survey.elephants) if (c.burster) burstRateSum += c.burstRate;
  // How long a record lives: the age of each list's oldest record when the lists were taken.
  const ages = snapshots.map((sn) => sn.takenAt - Math.min(...sn.clients.map((c) => c.lastSeen)));
  return {
    kind,
    summary: run.summary,
    survey,
    burstRateSum,
    lifetime: ages.reduce((a, b) => a + b, 0) / ages.length,
    perServer: result.serverResults.map((r) => r.received / duration),
    caughtShare: run.caughtShare,
    arrivals: run.perSecond(result.series.arrived),
    burstmakers: run.perSecond(result.series.perPopulation["burstmakers"]!),
    caught: run.perSecond(result.series.caught),
  };
}

interface NistRuns {
  /** Records in each server's MRU list. */
  capacity: number;
  runs: NistRun[];
}

/** The Boulder servers twice: behind the paper's round-robin balancer, then behind a source-hash one. */
function nistRuns(o: ScenarioOptions, duration: number): NistRuns {
  const capacity = Math.max(16, Math.round(NIST_PAPER.mruEntries * o.scale));
  return {
    capacity,
    runs: [nistRun("round-robin", o, duration, capacity), nistRun("source-hash", o, duration, capacity)],
  };
}

function nistReport({ capacity, runs }: NistRuns, o: ScenarioOptions, duration: number): ReportBody {
  const s = o.scale;
  const each = (f: (r: NistRun) => string) => runs.map(f);
  const x = (n: number) => (s === 1 ? fmtInt(n) : `${fmtInt(n * s)} (x${s})`);
  const durationEdges: [number, number | null][] = [
    [0, 60],
    [60, 3600],
    [86400, null],
  ];
  const rows = [
    [
      "MRU list per machine; arrivals per machine",
      "about 1,200 entries; close to 1,000 PPS",
      ...each((r) => `${fmtInt(capacity)}; ${r.perServer.map((p) => fmtInt(p)).join(", ")} PPS`),
      "",
    ],
    [
      "new entries swept out after",
      "about 9 s",
      ...each((r) => fmtSeconds(r.lifetime)),
      `admission probability ${NIST_ADMIT_PROBABILITY} calibrated for it`,
    ],
    [
      "survey window",
      "9 s",
      ...each((r) => fmtSeconds(r.survey.window.duration)),
      "the span common to the three lists",
    ],
    [
      "packets in the lists in the window",
      `${x(NIST_PAPER.windowPackets)} (${fmtPps(NIST_PAPER.windowPps * s)})`,
      ...each((r) => `${fmtInt(r.survey.packets)} (${fmtPps(r.survey.rate)})`),
      "",
    ],
    [
      "share of the arrivals in the window",
      '13% ("of the 3,000 arrivals": 3,595 of 27,000)',
      ...each(
        (r) => `${fmtPct(r.survey.arrivals.share)} of ${fmtInt(r.survey.arrivals.estimated ?? Number.NaN)}`,
      ),
      "the lists are a sample: most newcomers are refused",
    ],
    [
      "bursters (spacing under 5 s): clients, their packets",
      `${x(NIST_PAPER.bursters)} clients, ${x(NIST_PAPER.burstPackets)} packets`,
      ...each(
        (r) => `${fmtInt(r.survey.bursters.clients)} clients, ${fmtInt(r.survey.bursters.packets)} packets`,
      ),
      `${x(NIST_PAPER.bursters)} burstmakers are active at any time`,
    ],
    [
      "bursters' load: packets in the window",
      `${fmtPps((NIST_PAPER.burstPackets / 9) * s)} (1,094 in 9 s)`,
      ...each((r) => fmtPps(r.survey.bursters.rate)),
      "",
    ],
    [
      "bursters' load: sum of their burst rates",
      `${fmtPps(NIST_PAPER.burstersPps * s)} (78% of 400 PPS)`,
      ...each(
        (r) =>
          `${fmtPps(r.burstRateSum)} (${fmtPct(ratio(r.burstRateSum, r.survey.rate))} of ${fmtPps(r.survey.rate)})`,
      ),
      "the paper's 313 PPS reads this way",
    ],
    [
      "concentration",
      "14% of the clients carry 78% of the load",
      ...each(
        (r) =>
          `${fmtPct(r.survey.bursters.clientShare)} of the clients carry ${fmtPct(r.survey.bursters.loadShare)}`,
      ),
      "bursters' share of the clients and of the packets in the window",
    ],
    [
      "by rate: over 1 PPS",
      `${x(PAPER_RATE_TABLE[0]!.clients)} (${fmtPps(PAPER_RATE_TABLE[0]!.pps * s)})`,
      ...each((r) => fmtBin(sumBins(r.survey.byRate.filter((b) => b.from >= 1)))),
      "the paper's bins overlap and hold 304 of 574",
    ],
    [
      "by rate: 1 to 2 PPS",
      `${x(PAPER_RATE_TABLE[1]!.clients)} (${fmtPps(PAPER_RATE_TABLE[1]!.pps * s)})`,
      ...each((r) => fmtBin(binRow(r.survey.byRate, 1, 2))),
      "166 PPS from 253 is 0.66 PPS each: under 1 PPS",
    ],
    [
      "by rate: 2 to 5 PPS",
      `${x(PAPER_RATE_TABLE[2]!.clients)} (${fmtPps(PAPER_RATE_TABLE[2]!.pps * s)})`,
      ...each((r) => fmtBin(binRow(r.survey.byRate, 2, 5))),
      "",
    ],
    ["by rate: under 1 PPS", "not given", ...each((r) => fmtBin(binRow(r.survey.byRate, 0, 1))), ""],
    ...NIST_PAPER.byDuration.map((p, i) => {
      const e = durationEdges[i]!;
      return [
        `by duration: ${p.label}`,
        `${x(p.clients)} (${fmtPps(p.pps * s)})`,
        ...each((r) => fmtBin(binRow(r.survey.byDuration, e[0], e[1]))),
        i === 2 ? `a record cannot be older than the run (${fmtSeconds(duration)})` : "",
      ];
    }),
    ["packets the call-gap catches", "0.1% (§12)", ...each((r) => fmtPct(r.caughtShare)), ""],
  ];
  const rr = runs[0]!;
  const chart: ReportChart = {
    title: "Arrivals at the three servers per second (round-robin run)",
    xLabel: "seconds",
    yLabel: "packets per second",
    x0: 0,
    dx: 1,
    lines: [
      { name: "all arrivals", values: rr.arrivals },
      { name: "burstmakers", values: rr.burstmakers },
      { name: "caught by the call-gap", values: rr.caught },
    ],
  };
  const curve: ReportChart = {
    title: "Load share: the heaviest x% of the clients carry y% of the load (survey of the simulated lists)",
    xLabel: "share of the clients, heaviest first (%)",
    yLabel: "share of the load (%)",
    x0: 0,
    dx: 1,
    lines: runs.map((r) => ({
      name: r.kind,
      values: Array.from({ length: 101 }, (_, k) => {
        let best = 0;
        for (const p of r.survey.curve.points)
          if (p.clients <= k / 100 + 1e-12 && p.load > best) best = p.load;
        return best * 100;
      }),
    })),
    marks: [{ x: 14, label: "paper: 14% carry 78%" }],
  };
  return {
    summary: [
      `Three servers, ${fmtInt(capacity)}-record MRU lists, ${fmtPps(NIST_PAPER.ppsPerServer * s)} each, ${fmtSeconds(duration)}; ` +
        "then the survey code consolidates the three simulated lists, as `ntpshield survey` does with real ones. " +
        "Once behind a round-robin balancer (the paper's), once behind a source-hash one.",
    ],
    table: {
      title: "NIST survey (§5)",
      columns: ["figure", "paper", "survey, round-robin", "survey, source-hash", "note"],
      rows,
    },
    charts: [chart, curve],
    runs: runs.map((r) => r.summary),
  };
}

export const nist = defineScenario({
  name: "nist",
  title: "NIST: the nine-second survey of three MRU lists",
  sections: "§5, §12",
  about:
    "Three servers behind a balancer, 1,000 PPS each, MRU lists of 1,200 records; the survey code consolidates the simulated lists and its figures go beside the paper's 3,595 packets, 13% of arrivals, 574 bursters and '14% of clients carry 78% of the load'.",
  notes: [
    "Calibrated: the MRU admission probability (0.125) for the paper's nine-second lifetime. The burstmakers are §5's duration table (574 active at any time: 379 bursts under a minute at 214 PPS, 189 under an hour at 93 PPS, 6 over a day at 6 PPS, two of them at 2 PPS); settled mice fill the rest of 3,000 PPS.",
    "The paper's two burstmaker tables disagree: the rate bins hold 15 + 253 + 36 = 304 clients, not 574; 'greater than 1 PPS' overlaps 'between 1 and 2 PPS'; and 253 clients 'between 1 and 2 PPS' cannot total 166 PPS (0.66 PPS each). The duration table adds up (574 clients, 313 PPS), so the simulation follows it and shows the survey's rate bins beside the paper's as an output: nearly all bursters fall under 1 PPS, as the rate table's own totals suggest.",
    "'13 percent of the total number of 3,000 arrivals': 3,000 is the arrival rate of the three machines per second; in 9 s they receive 27,000 packets, and 3,595 is 13% of that. The survey estimates the arrivals in its window from each server's counters.",
    "The paper's load figures mix two measures: 1,094 burst packets in 9 s is 122 PPS, while 'the bursters account for about 313 PPS' and '78 percent of the total load' (313 of 400 PPS) match the bursters' own rates summed. The table gives both; the survey's headline share is the packets in the window.",
    "Round-robin spreads each burstmaker over the three lists, a third of its packets each: its record on a server is touched every 5-6 s on average, often longer than the nine seconds a record lives, so it is lost and, with most newcomers refused, seldom comes back. The lists then see only part of the burstmakers and few of their packets. Behind a source-hash balancer each burstmaker keeps one record, touched every 2 s, and the survey finds nearly all of them, with the paper's split by duration.",
    "Durations over a day need a run over a day (--duration 90000, about two minutes per balancer): a record cannot be older than its run.",
    "The 0.1% gapped at NIST (§12) came from NIST's own call-gap scheme; with ntpshield's and round-robin balancing the share depends on how many of a burster's packets land on one server (see `ntpshield simulate balancer`).",
  ],
  defaultDuration: 600,
  minDuration: 30,
  runs: nistRuns,
  report: nistReport,
  live: (n, scale) => ({
    description:
      "polite ntpd clients (16 s, compressed from 64 s), §5's burstmakers (a twentieth of them) and two clients at 2 PPS like 'the worst two'",
    populations: [
      liveMice(n(40)),
      new Burstmakers("burstmakers", { scale: 0.05 * scale }),
      new Elephants("worst-two", { count: 2, rate: 2 }, "'the worst two': 2 PPS for days (§5)"),
    ],
    replyBlocked: [],
  }),
});
