// `ntpshield simulate balancer`: the load balancer and the call-gap (paper §12). "It was noted for both USNO
// and NIST that the load balancer distributes arriving packets randomly to the three servers. To be more
// precise, the packets are delivered round-robin fashion; however, at aggregate arrival rates in the
// thousands of PPS and the arrival rates for even the most ornery clients only 14 PPS, the effect is the
// same. A problem with random distribution is that the probability that all or even most of the packets
// land on the same server is small, so that the KoD and call-gap schemes become less effective. A remedy for
// the load balancer would be to hash arriving packet source IP addresses and select the server using a mask
// on the result."
//
// The same traffic (NIST's 3,000 PPS: settled mice, §5's burstmakers, and a 14 PPS offender) over three
// servers, once per balancer: round-robin, random, source-hash. The figure is the share of the elephants'
// packets the call-gap catches (it fired for the packet, whatever was then done with it: dropped, kissed,
// or let through by the leak), and how many of their requests are still answered.

import { BALANCER_KINDS, type BalancerKind } from "../balancer.ts";
import { Burstmakers } from "../populations/burstmakers.ts";
import { Elephants } from "../populations/elephants.ts";
import { settledMice } from "../populations/mice.ts";
import { fmtInt, fmtPct, type ReportChart, type RunSummary, ratio, runSummary } from "../report.ts";
import { defineScenario, liveMice, type ReportBody, type ScenarioOptions, simulate } from "./common.ts";

export const BALANCER_PAPER = Object.freeze({
  servers: 3,
  offenderPps: 14,
  gappedUsno: 0.065,
  gappedNist: 0.001,
});

export interface BalancerRun {
  kind: BalancerKind;
  summary: RunSummary;
  /** Share of elephant packets (burstmakers and offender) the call-gap caught. */
  elephantsCaught: number;
  burstersCaught: number;
  offenderCaught: number;
  allCaught: number;
  elephantsAnswered: number;
  kods: number;
  caughtSeries: number[];
}

/** One run of the balancer scenario's traffic through `kind`. Exported for tests. */
export function balancerRun(kind: BalancerKind, o: ScenarioOptions, duration: number): BalancerRun {
  const s = o.scale;
  const bursters = new Burstmakers("burstmakers", { scale: s });
  const offender = new Elephants(
    "offender",
    { count: 1, rate: BALANCER_PAPER.offenderPps },
    "the most ornery client: 14 PPS from one address (§12)",
  );
  const mice = settledMice("mice", 3000 * s - bursters.rate - BALANCER_PAPER.offenderPps);
  const run = simulate(
    `balancer ${kind}`,
    o,
    { duration, servers: BALANCER_PAPER.servers, balancer: kind, binSeconds: 10 },
    [mice, bursters, offender],
  );
  const r = run.result;
  const get = (name: string) => r.populations.find((p) => p.name === name)!;
  const b = get("burstmakers");
  const off = get("offender");
  let kods = 0;
  for (const sv of r.serverResults) kods += sv.kissed;
  return {
    kind,
    summary: runSummary(`${kind}`, r, run.wallMs),
    elephantsCaught: ratio(b.caught + off.caught, b.arrived + off.arrived),
    burstersCaught: ratio(b.caught, b.arrived),
    offenderCaught: ratio(off.caught, off.arrived),
    allCaught: run.caughtShare,
    elephantsAnswered: ratio(b.answered + off.answered, b.sent + off.sent),
    kods,
    caughtSeries: run.perSecond(r.series.caught),
  };
}

function balancerReport(runs: BalancerRun[], o: ScenarioOptions, duration: number): ReportBody {
  const each = (f: (r: BalancerRun) => string) => runs.map(f);
  const rows = [
    [
      "elephant packets the call-gap catches",
      "random distribution makes call-gap and KoD 'less effective'",
      ...each((r) => fmtPct(r.elephantsCaught)),
      "burstmakers and the 14 PPS offender",
    ],
    [
      "  burstmakers' packets caught",
      "-",
      ...each((r) => fmtPct(r.burstersCaught)),
      "§5's mix, mostly under 1 PPS",
    ],
    [
      "  the 14 PPS offender's packets caught",
      "'only 14 PPS': 4.7 PPS at each of 3 servers",
      ...each((r) => fmtPct(r.offenderCaught)),
      "fast enough to be caught anyway",
    ],
    [
      "elephants' requests still answered",
      "-",
      ...each((r) => fmtPct(r.elephantsAnswered)),
      "the allowances, leak, gaps missed",
    ],
    [
      "all packets caught",
      "6.5% (USNO), 0.1% (NIST)",
      ...each((r) => fmtPct(r.allCaught)),
      "mice are never caught",
    ],
    ["kiss-o'-death packets sent", "-", ...each((r) => fmtInt(r.kods)), "at most one per client per 5 s"],
  ];
  const chart: ReportChart = {
    title: "Packets caught by the call-gap, per second (three servers together)",
    xLabel: "seconds",
    yLabel: "packets per second",
    x0: 0,
    dx: 10,
    lines: runs.map((r) => ({ name: r.kind, values: r.caughtSeries })),
  };
  return {
    summary: [
      `The same ${fmtInt(3000 * o.scale)} PPS (settled mice, §5's burstmakers, one 14 PPS offender) over three servers for ${duration} s, once per balancer.`,
    ],
    table: {
      title: "Balancers and the call-gap (§12)",
      columns: ["figure", "paper", "round-robin", "random", "source-hash", "note"],
      rows,
    },
    charts: [chart],
    runs: runs.map((r) => r.summary),
  };
}

export const balancer = defineScenario({
  name: "balancer",
  title: "Balancers: round-robin, random and source-hash in front of the call-gap",
  sections: "§12",
  about:
    "The share of elephant packets the call-gap catches when three servers sit behind a round-robin, a random or a source-hash balancer (the paper's remedy).",
  notes: [
    "Round-robin and random give each server about a third of an elephant's packets, so each server sees it three times slower than it is: a burstmaker at 0.5 PPS looks like a client at one packet per 6 s, above the call-gap's 5 s average, and passes. Hashing the source address keeps every packet of a client on one server, whose call-gap then sees its real rate.",
    "The paper's 6.5% (USNO) and 0.1% (NIST) are shares of all packets, from different populations and (for NIST) a different scheme; the simulated share of all packets is shown beside them for scale, not as a reproduction.",
    "'Caught' counts every packet for which the call-gap fired, whether it was then dropped, answered by a RATE kiss, dropped by the KoD limiter, or answered by the leak ([callgap] leak, default 2: one in four).",
  ],
  defaultDuration: 600,
  minDuration: 30,
  runs: (o, duration) => BALANCER_KINDS.map((k) => balancerRun(k, o, duration)),
  report: balancerReport,
  live: (n) => ({
    description:
      "polite ntpd clients (16 s, compressed from 64 s), the 14 PPS offender and five elephants at 2 PPS: one real server sees every packet of a client, as behind a source-hash balancer",
    populations: [
      liveMice(n(40)),
      new Elephants("offender", { count: 1, rate: 14 }, "the most ornery client: 14 PPS (§12)"),
      new Elephants("elephants", { count: n(5), rate: 2 }),
    ],
    replyBlocked: [],
  }),
});
