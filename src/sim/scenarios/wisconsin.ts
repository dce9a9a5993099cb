// `ntpshield simulate wisconsin`: the Wisconsin incident (paper §3). 700,000 routers with the server's
// address hard-coded in their firmware poll it; "as long as the server and network path were operating
// normally, the situation was tolerable; however, if not," each router retries every second and the
// population sends "an unsustainable network traffic rate over 400 Mbps". And "a naive user could
// inadvertently configure the firewall to reject NTP packets received from the server, which would have the
// same result as a broken server or network": 1% of the routers never see a reply.
//
// One run per firmware, same seed and timeline: the server reachable, then unreachable for a while (the
// ISP's block, or a break in the path: the routers' packets go nowhere), then reachable again. The
// defective firmware retries every second and takes a kiss-o'-death for no answer; the fixed one backs off
// exponentially and obeys kisses, as the paper's lessons ask ("backing off the request rate when the server
// does not respond", §3; KoD, §11).
//
// Then the splurge once more, against a server that can answer only so much, with the server's mice
// beside the routers: without overload control and with it (§12's proposal, our extension; the paper has
// no figure for it). That part is wisconsin-overload.ts.

import { Routers } from "../populations/routers.ts";
import { fmtInt, fmtPct, fmtPps, type ReportChart, type RunSummary, ratio } from "../report.ts";
import { defineScenario, maxOf, meanOf, type ReportBody, type ScenarioOptions, simulate } from "./common.ts";
import {
  SPLURGE,
  type SplurgeRuns,
  splurgeCharts,
  splurgeRuns,
  splurgeSizes,
  splurgeTable,
} from "./wisconsin-overload.ts";

export const WISCONSIN_PAPER = Object.freeze({
  routersSold: 700_000,
  clientsSeen: 500_000,
  discardedPps: 250_000,
  potentialMbps: 400,
  splurgePps: 100_000,
  splurgePpsOtherRenderings: 700_000,
  wireBytes: 90,
});

/** Share of the routers whose own firewall rejects the server's replies (an assumption; the paper gives none). */
export const FIREWALLED_SHARE = 0.01;

interface WiscRun {
  summary: RunSummary;
  normal: number;
  peak: number;
  endOfOutage: number;
  recovery: number;
  /** Worst second from half a poll to a poll and a half after the path returns (NaN if past the run). */
  echo: number;
  fwOffered: number;
  /** Arrivals at the server in the first second after the path returns, and how many were served. */
  returnArrived: number;
  returnServed: number;
  fwCaught: number;
  offered: number[];
}

function mbps(pps: number): string {
  return `${((pps * WISCONSIN_PAPER.wireBytes * 8) / 1e6).toFixed(1)} Mbps`;
}

function wiscRun(
  label: string,
  fixed: boolean,
  o: ScenarioOptions,
  duration: number,
  out: [number, number],
): WiscRun {
  const total = Math.max(2, Math.round(WISCONSIN_PAPER.routersSold * o.scale));
  const fwCount = Math.max(1, Math.round(total * FIREWALLED_SHARE));
  const firmware = fixed ? { backoff: true, obeyKod: true } : {};
  const routers = new Routers("routers", { count: total - fwCount, ...firmware });
  const fw = new Routers("routers-fw", { count: fwCount, ...firmware });
  const run = simulate(
    label,
    o,
    {
      duration,
      servers: 1,
      binSeconds: 1,
      outages: [
        { from: out[0], to: out[1], populations: ["routers", "routers-fw"] },
        { from: 0, to: duration, populations: ["routers-fw"], direction: "reply" },
      ],
    },
    [routers, fw],
  );
  // The figures are for the routers that see their replies; the firewalled ones have their own row.
  const main = run.result.series.perPopulation["routers"]!;
  const offered = run.perSecond(main);
  const normal = meanOf(main, Math.floor(out[0] / 2), Math.floor(out[0]));
  let recovery = Number.NaN;
  for (let b = Math.ceil(out[1]); b < main.length; b++) {
    if (main[b]! <= 1.2 * normal) {
      recovery = b - out[1];
      break;
    }
  }
  const f = run.result.populations.find((p) => p.name === "routers-fw")!;
  return {
    summary: run.summary,
    normal,
    peak: maxOf(main, Math.floor(out[0]), Math.floor(out[1])),
    endOfOutage: main[Math.floor(out[1]) - 1] ?? Number.NaN,
    recovery,
    echo: out[1] + 90 <= duration ? maxOf(main, out[1] + 30, out[1] + 90) : Number.NaN,
    fwOffered: f.sent / duration,
    returnArrived: run.result.series.arrived[Math.ceil(out[1])] ?? Number.NaN,
    returnServed: run.result.series.served[Math.ceil(out[1])] ?? Number.NaN,
    fwCaught: ratio(f.caught, f.arrived),
    offered,
  };
}

interface WiscRuns {
  /** When the path breaks and when it returns, seconds. */
  out: [number, number];
  bad: WiscRun;
  good: WiscRun;
  /** The splurge against a server with a capacity, without and with overload control. */
  splurge: SplurgeRuns;
}

/** The same timeline twice: the defective firmware, then the fixed one; then the splurge runs. */
function wiscRuns(o: ScenarioOptions, duration: number): WiscRuns {
  // Reachable for the first quarter, unreachable until 5/8, reachable again: long enough for every
  // router to have noticed the break (each notices at its next poll, up to a minute later).
  const out: [number, number] = [Math.round(duration / 4), Math.round((duration * 5) / 8)];
  return {
    out,
    bad: wiscRun("defective firmware", false, o, duration, out),
    good: wiscRun("fixed firmware", true, o, duration, out),
    splurge: splurgeRuns(o, duration),
  };
}

function wiscReport({ out, bad, good, splurge }: WiscRuns, o: ScenarioOptions, duration: number): ReportBody {
  const routers = Math.max(2, Math.round(WISCONSIN_PAPER.routersSold * o.scale));
  const both = (f: (r: WiscRun) => string) => [f(bad), f(good)];
  const rec = (r: WiscRun) =>
    Number.isFinite(r.recovery) ? `${r.recovery} s after the path returns` : "not within the run";
  const rows = [
    [
      "routers",
      "700,000 sold; over 500,000 seen in a day",
      fmtInt(routers),
      fmtInt(routers),
      `scale x${o.scale}; 1% of them reject the replies (last row)`,
    ],
    [
      "offered while the server answers",
      '"tolerable"',
      ...both((r) => `${fmtPps(r.normal)} (${mbps(r.normal)})`),
      "assumes a 60 s poll when answered (not in the paper)",
    ],
    [
      "offered while unreachable, worst second",
      "250,000 PPS average discarded; potential over 400 Mbps",
      ...both((r) => `${fmtPps(r.peak)} (${mbps(r.peak)})`),
      "each router notices at its next poll, then retries; all at 1 PPS: 504 Mbps",
    ],
    [
      "offered in the last second of the outage",
      "splurge up to 100,000 PPS (700,000 in the other renderings)",
      ...both((r) => `${fmtPps(r.endOfOutage)} (${mbps(r.endOfOutage)})`),
      "the fixed firmware has backed off",
    ],
    [
      "at the server in the first second back",
      "-",
      ...both((r) => `${fmtPps(r.returnArrived)}, ${fmtPct(ratio(r.returnServed, r.returnArrived))} served`),
      "every router that was retrying gets through at once",
    ],
    ["back to normal", "-", ...both(rec), "within 20% of the load before the outage"],
    [
      "worst second a poll later",
      "-",
      ...both((r) => (Number.isFinite(r.echo) ? fmtPps(r.echo) : "past the run")),
      "answered in the same second, they poll again together",
    ],
    [
      `routers whose firewall rejects the replies (${fmtPct(FIREWALLED_SHARE)})`,
      '"the same result as a broken server or network"',
      ...both((r) => `${fmtPps(r.fwOffered)}; call-gap catches ${fmtPct(r.fwCaught)}`),
      "they never see an answer, nor a kiss",
    ],
  ];
  const chart: ReportChart = {
    title: "Offered load at the Wisconsin server's border, per second (routers that see replies)",
    xLabel: "seconds",
    yLabel: "packets per second",
    x0: 0,
    dx: 1,
    lines: [
      { name: "defective firmware", values: bad.offered },
      { name: "fixed firmware", values: good.offered },
    ],
    marks: [
      { x: out[0], label: "path breaks" },
      { x: out[1], label: "path returns" },
    ],
  };
  const size = splurgeSizes(o.scale);
  return {
    summary: [
      `${fmtInt(routers)} routers poll one hard-coded server; the path to it is down from ${out[0]} s to ${out[1]} s of a ${duration} s run. ` +
        "Run once with the defective firmware (retry every second, a kiss is no answer) and once with the fixed one (back off, obey KoD).",
      `Then the splurge: a server that answers at most ${fmtPps(size.capacity)} has known its ${fmtInt(size.mice)} mice for ${fmtInt(SPLURGE.prelude)} s when ${fmtInt(size.routers)} defective routers are switched on; ${duration} s of splurge, ` +
        "once without overload control and once with it (§12's proposal: our extension, the paper gives no figure for it).",
    ],
    table: {
      title: "Wisconsin (§3)",
      columns: ["figure", "paper", "defective firmware", "fixed firmware", "note"],
      rows,
    },
    moreTables: [splurgeTable(splurge, o.scale)],
    charts: [chart, ...splurgeCharts(splurge)],
    runs: [bad.summary, good.summary, splurge.off.summary, splurge.on.summary],
  };
}

export const wisconsin = defineScenario({
  name: "wisconsin",
  title: "Wisconsin: routers with a hard-coded server",
  sections: "§3, §11, §12",
  about:
    "700,000 routers poll one hard-coded server; the path breaks for a while and comes back. Defective firmware retries every second and ignores KoD; fixed firmware backs off and obeys. 1% of the routers reject the replies in their own firewall. Then the 100,000 PPS splurge against a server of limited capacity and its mice, with and without overload control.",
  notes: [
    "The poll while answered (60 s) and the share of routers behind a reply-rejecting firewall (1%) are assumptions: the paper gives neither.",
    "The paper's 250,000 PPS is what the ISP discarded on average over a day from the routers switched on at the time (over 500,000 distinct in a day); the simulation has all of its routers on at once, so its worst second is the 700,000 x 1 PPS the paper calls 'over 400 Mbps' (504 Mbps at 90 bytes a packet).",
    "The renderings of the paper disagree on the splurge: 'up to 100,000 PPS' (000, the reference) and 'up to 700,000 PPS' (001, 002). 700,000 PPS is what 700,000 routers retrying every second send; 100,000 PPS is what a seventh of them would. The table shows both.",
    "The outage synchronises the defective routers: all of them are answered in the first second back and poll again together a minute later (spread only by their 2% jitter), an echo of the splurge at the server. The fixed firmware's back-off spreads their return.",
    "No server defence helps while the path is down: the packets never arrive. Once it returns, the defective routers are answered and go back to their poll. The routers behind reply-rejecting firewalls send 1 PPS for ever: the call-gap catches them (after each record's first 3 requests, its fast allowance) but cannot slow them, since they never see a kiss; only the fixed firmware's back-off does.",
    "The splurge runs are our extension: the paper proposes overload control (§12) and gives no figure for it, so their 'paper' column quotes the figures they start from. The server's capacity (1,000 answers a second at scale 1) is an assumption, chosen below the 1,667 PPS the routers send once answered, so that answering cannot quiet them and the splurge lasts, as the real one did; past it, answers are lost at random, as a full socket queue loses requests. With overload control the redline is the capacity. Their MRU list is the configured one scaled with --scale.",
    "Overload control measures each second and acts on the next: the mice lose most of their requests in the splurge's first second (nothing measured yet), some in its second (routers that were newcomers in the first are known clients in the second, a class not withheld yet), and a few whenever a second's demand outgrows the one before. The routers it withholds are unanswered, so the defective ones retry every second: the splurge is larger with it, and fewer routers are answered and quieted.",
  ],
  defaultDuration: 240,
  minDuration: 40,
  runs: wiscRuns,
  report: wiscReport,
  live: (n) => ({
    description:
      "defective routers just switched on (answered, then one poll a minute), defective routers whose firewall rejects the replies (1 PPS for ever), and fixed routers behind the same firewall (backing off)",
    populations: [
      new Routers("routers", { count: n(50), startWithin: 5 }),
      new Routers("routers-fw", { count: n(20), startWithin: 2 }),
      new Routers("fixed-fw", { count: n(20), backoff: true, obeyKod: true, startWithin: 2 }),
    ],
    replyBlocked: ["routers-fw", "fixed-fw"],
  }),
});
