// `ntpshield simulate usno`: the USNO servers in Washington (paper §4, §12). Three servers behind a
// round-robin balancer; the traffic "peaks at 7,000 PPS on or about the hour and drops back to 5,000 PPS
// between the hours. Apparently a large number of clients are run from hourly scripts. A simple way to
// amortize the peaks would be to stagger the scripts over the hour." Also in the population: the
// university firewall with 2,000 hosts behind one address (9 PPS), the worst offender (14 PPS), and
// burstmakers in NIST's mix scaled to USNO's load (the paper gives no USNO mix; §5 says NIST's Washington
// servers are "in much the same shape as the USNO servers"). Two runs with the same seed: scripts on the
// hour, then staggered; the table puts the paper's figures beside both.
//
// Calibrated, not reproduced: the number of script hosts (120,000 x scale, all starting within the minute
// after the hour, so that the hour's minute carries the paper's extra 2,000 PPS) and the mice (filling the
// rest of the 5,000 PPS). What the simulation then derives: what staggering does to the peak, how much of
// the traffic the call-gap catches (paper: 6.5%), and what the defences do to the firewall's hosts and the
// worst offender.

import { DEFAULT_START_MS } from "../engine.ts";
import { Burstmakers } from "../populations/burstmakers.ts";
import { Elephants } from "../populations/elephants.ts";
import { firewall, settledMice } from "../populations/mice.ts";
import { SntpScripts } from "../populations/scripts.ts";
import { fmtInt, fmtPct, fmtPps, type ReportChart, type RunSummary, ratio } from "../report.ts";
import {
  defineScenario,
  liveMice,
  median,
  type ReportBody,
  type ScenarioOptions,
  simulate,
} from "./common.ts";

export const USNO_PAPER = Object.freeze({
  servers: 3,
  peakPps: 7000,
  betweenPps: 5000,
  firewallHosts: 2000,
  firewallPps: 9,
  offenderPps: 14,
  offenderClients: 731,
  gappedShare: 0.065,
  redlinePps: 35_000,
});

/** Script hosts at scale 1: 2,000 extra PPS for the minute after the hour. */
export const USNO_SCRIPTS = 120_000;

const BIN = 60;

interface UsnoRun {
  summary: RunSummary;
  peak: number;
  between: number;
  caughtShare: number;
  offered: number[];
  caught: number[];
}

function usnoRun(
  label: string,
  staggered: boolean,
  o: ScenarioOptions,
  duration: number,
  hourAt: number,
): UsnoRun {
  const s = o.scale;
  const bursters = new Burstmakers("burstmakers", { scale: (USNO_PAPER.betweenPps / 3000) * s });
  const scripts = new SntpScripts(staggered ? "scripts-staggered" : "scripts", {
    count: Math.round(USNO_SCRIPTS * s),
    schedule: staggered ? "staggered" : "hourly",
  });
  const fw = firewall("firewall", { hosts: USNO_PAPER.firewallHosts, rate: USNO_PAPER.firewallPps });
  const offender = new Elephants(
    "offender",
    { count: 1, rate: USNO_PAPER.offenderPps },
    "the worst offender: 14 PPS from one address (§4)",
  );
  const mice = settledMice(
    "mice",
    USNO_PAPER.betweenPps * s - bursters.rate - USNO_PAPER.firewallPps - USNO_PAPER.offenderPps,
  );
  const run = simulate(
    label,
    o,
    {
      duration,
      servers: USNO_PAPER.servers,
      balancer: "round-robin",
      startMs: DEFAULT_START_MS - hourAt * 1000,
      binSeconds: BIN,
    },
    [mice, scripts, bursters, fw, offender],
  );
  const { result } = run;
  const offered = run.perSecond(result.series.offered);
  const caught = run.perSecond(result.series.caught);
  const peakBin = Math.floor(hourAt / BIN);
  // "Between the hours": every whole minute at least two minutes away from a top of the hour.
  const between: number[] = [];
  const bins = Math.floor(duration / BIN);
  for (let b = 0; b < bins; b++) {
    const t = b * BIN - hourAt;
    const fromHour = ((t % 3600) + 3600) % 3600;
    if (fromHour >= 2 * BIN && fromHour <= 3600 - 2 * BIN) between.push(offered[b]!);
  }
  return {
    summary: run.summary,
    peak: offered[peakBin] ?? Number.NaN,
    between: median(between),
    caughtShare: run.caughtShare,
    offered,
    caught,
  };
}

function pop(run: UsnoRun, name: string) {
  const p = run.summary.populations.find((x) => x.name === name);
  if (!p) throw new Error(`no population ${name}`);
  return p;
}

interface UsnoRuns {
  hourAt: number;
  hourly: UsnoRun;
  staggered: UsnoRun;
}

/** The same hour twice: the scripts on the hour, then staggered over it. */
function usnoRuns(o: ScenarioOptions, duration: number): UsnoRuns {
  const hourAt = Math.floor(duration / 2 / BIN) * BIN;
  return {
    hourAt,
    hourly: usnoRun("scripts on the hour", false, o, duration, hourAt),
    staggered: usnoRun("scripts staggered", true, o, duration, hourAt),
  };
}

function usnoReport(
  { hourAt, hourly, staggered }: UsnoRuns,
  o: ScenarioOptions,
  duration: number,
): ReportBody {
  const s = o.scale;
  const fwH = pop(hourly, "firewall");
  const fwS = pop(staggered, "firewall");
  const offH = pop(hourly, "offender");
  const offS = pop(staggered, "offender");
  const fmtFw = (p: typeof fwH) =>
    `${fmtPps(p.sent / duration)}; hosts answered ${fmtPct(ratio(p.answered, p.sent))}, kissed ${fmtPct(ratio(p.kissed, p.sent))}`;
  const fmtOff = (p: typeof offH) =>
    `caught ${fmtPct(ratio(p.caught, p.arrived))}, answered ${fmtPct(ratio(p.answered, p.sent))}`;
  const scaled = (n: number) => (s === 1 ? fmtPps(n) : `${fmtPps(n * s)} (x${s})`);
  const rows = [
    [
      "aggregate on the hour (minute after the hour)",
      scaled(USNO_PAPER.peakPps),
      fmtPps(hourly.peak),
      fmtPps(staggered.peak),
      "script count calibrated to the paper's peak; staggering is the derived figure",
    ],
    [
      "aggregate between the hours (median minute)",
      scaled(USNO_PAPER.betweenPps),
      fmtPps(hourly.between),
      fmtPps(staggered.between),
      "mice calibrated to fill it",
    ],
    [
      "peak / between",
      (USNO_PAPER.peakPps / USNO_PAPER.betweenPps).toFixed(2),
      (hourly.peak / hourly.between).toFixed(2),
      (staggered.peak / staggered.between).toFixed(2),
      "§4: staggering would amortize the peaks",
    ],
    [
      "packets the call-gap catches (all traffic)",
      fmtPct(USNO_PAPER.gappedShare),
      fmtPct(hourly.caughtShare),
      fmtPct(staggered.caughtShare),
      "derived: round-robin over 3 servers, §5's burstmaker mix scaled to 5,000 PPS",
    ],
    [
      "firewall: 2,000 hosts on one address",
      "9 PPS in all",
      fmtFw(fwH),
      fmtFw(fwS),
      "to the call-gap one address at 9 PPS is one elephant",
    ],
    [
      "worst offender, one address",
      '14 PPS ("731 properly engineered clients")',
      fmtOff(offH),
      fmtOff(offS),
      "14 PPS is 896 clients at 64 s, 14,336 at 1,024 s",
    ],
  ];
  const chart: ReportChart = {
    title: "Offered load per minute, three servers together",
    xLabel: "seconds from the start",
    yLabel: "packets per second",
    x0: 0,
    dx: BIN,
    lines: [
      { name: "scripts on the hour", values: hourly.offered },
      { name: "scripts staggered", values: staggered.offered },
      { name: "caught by the call-gap", values: hourly.caught },
    ],
    marks: [{ x: hourAt, label: "top of the hour" }],
  };
  return {
    summary: [
      `Three servers behind a round-robin balancer, ${fmtSpan(duration)} around a top of the hour; ` +
        `${fmtInt(Math.round(USNO_SCRIPTS * s))} hourly SNTP scripts, then the same scripts staggered over the hour.`,
    ],
    table: {
      title: "USNO (§4, §12)",
      columns: ["figure", "paper", "scripts on the hour", "scripts staggered", "note"],
      rows,
    },
    charts: [chart],
    runs: [hourly.summary, staggered.summary],
  };
}

function fmtSpan(s: number): string {
  return s % 60 === 0 ? `${s / 60} min` : `${s} s`;
}

export const usno = defineScenario({
  name: "usno",
  title: "USNO: the hourly peak, the firewall and the worst offender",
  sections: "§4, §12",
  about:
    "Three servers behind a round-robin balancer; hourly SNTP scripts give the paper's 7,000 PPS on the hour and 5,000 between, then the same scripts staggered; the firewall (2,000 hosts, 9 PPS) and the worst offender (14 PPS).",
  notes: [
    "Calibrated: 120,000 script hosts (times the scale) whose clocks run up to a minute late, so the minute after the hour carries the paper's extra 2,000 PPS; the settled mice (ntpd at 1,024 s) fill the rest of the 5,000 PPS. The paper gives neither count.",
    "Derived: staggering the same scripts over the hour spreads their 33 PPS (times the scale) evenly, and the hourly peak disappears into the noise.",
    "The gapped share depends on the burstmaker mix and on the balancer: with round-robin over three servers each server sees a third of an elephant's packets (see `ntpshield simulate balancer`). The paper's 6.5% (USNO) and 0.1% (NIST) come from different mixes and schemes (§12: NIST's 'slightly different scheme').",
    "The firewall: 2,000 ntpd hosts on one address at 9 PPS in all are, to any per-address defence, one client at 9 PPS: the call-gap gaps most of their packets and the few kisses reach one host at a time. §4: 'Only the firewall should use the USNO servers; the remaining campus should synchronize to the firewall.' An operator who must serve such a site exempts its address from `limited` ([[acl.rule]] with flags = []).",
    "The paper's '14 PPS, equivalent to the aggregate rate of 731 properly engineered clients' implies one packet per 52 s per client; at the 64-1,024 s the paper gives for ntpd, 14 PPS is 896 to 14,336 clients.",
    `Redline (§4): 35,000 PPS at one packet per 1,024 s per client is ${fmtInt(USNO_PAPER.redlinePps * 1024)} clients, the paper's '36 million'.`,
  ],
  defaultDuration: 3600,
  minDuration: 600,
  minDurationWhy: "an hour's peak and its surroundings",
  runs: usnoRuns,
  report: usnoReport,
  live: (n) => ({
    description:
      "polite ntpd clients (16 s, compressed from 64 s), a firewall of hosts on one address at 9 PPS, the worst offender at 14 PPS, and scripts that all run at the top of each (compressed) 10-s hour",
    populations: [
      liveMice(n(40)),
      firewall("firewall", { hosts: n(100), rate: 9 }),
      new Elephants("offender", { count: 1, rate: 14 }, "the worst offender: 14 PPS from one address (§4)"),
      new SntpScripts("scripts", { count: n(50), period: 10, skew: 1, timeout: 1 }),
    ],
    replyBlocked: [],
  }),
});
