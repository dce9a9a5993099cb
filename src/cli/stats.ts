// `ntpshield stats`: a running server's counters as `Label : value` lines, the way `chronyc serverstats`
// prints them, read from the monitoring endpoint's /api/stats (docs/monitoring.md). The packet lines are the
// ntpd-rs families of /metrics (received = accepted + rate-limited + denied + ignored), so the three views
// agree.

import { parseArgs } from "node:util";
import { DEFAULT_MONITOR_URL, getJson, MonitorError, monitorBase, reportFailure } from "./clients.ts";

export const STATS_USAGE = `usage: ntpshield stats [--url URL] [--json]

A running server's counters since it started, one "Label : value" line each (as chronyc serverstats):
packets received, accepted, rate-limited (call-gap), denied (access list, blocklist) and ignored; KoDs sent
by code; the MRU list; the blocklist; the clock.

  --url   the monitoring endpoint (default ${DEFAULT_MONITOR_URL}, the server's [http] listen)
  --json  the server's JSON answer as is`;

/** The part of /api/stats printed here (src/server/http/handlers.ts has it all). */
export interface StatsAnswer {
  version: string;
  server: string;
  uptime: number;
  clock: { stratum: number; leap: number; refid: string; rootDelay: number; rootDispersion: number } | null;
  packets: {
    received: number;
    accepted: number;
    denied: number;
    rateLimited: number;
    ignored: number;
    kod: { RATE: number; RSTR: number; DENY?: number };
    kodLimited: number;
    sendErrors: number;
    socketErrors: number;
    kernelDrops: number;
  };
  mru: {
    capacity: number;
    size: number;
    inserted: number;
    evicted: number;
    recycled: number;
    refused: number;
    protected?: number;
  };
  /** Absent from servers older than overload control. */
  overload?: {
    overloaded: boolean;
    entered: number;
    capacity: number;
    demand: number[];
    withheldPools: number[];
    withheld: number[];
  };
  blocklist: { enabled: boolean; entries: number };
}

const LEAP = ["Normal", "Insert second", "Delete second", "Not synchronised"];

/** The lines, labels padded so the colons line up. */
export function formatStats(s: StatsAnswer): string {
  const p = s.packets;
  const rows: [string, string | number][] = [
    ["NTP packets received", p.received],
    ["NTP packets accepted", p.accepted],
    ["NTP packets rate-limited", p.rateLimited],
    ["NTP packets denied", p.denied],
    ["NTP packets ignored", p.ignored],
    ["KoD RATE sent", p.kod.RATE],
    ["KoD RSTR sent", p.kod.RSTR],
    ["KoD DENY sent", p.kod.DENY ?? 0],
    ["KoD withheld (limiter)", p.kodLimited],
    ["Send errors", p.sendErrors],
    ["Socket errors", p.socketErrors],
    ["Kernel receive drops", p.kernelDrops],
    ["MRU records", `${s.mru.size} of ${s.mru.capacity}`],
    ["MRU records inserted", s.mru.inserted],
    ["MRU records evicted", s.mru.evicted],
    ["MRU records recycled", s.mru.recycled],
    ["MRU newcomers refused", s.mru.refused],
    ["MRU mice kept (2nd chances)", s.mru.protected ?? 0],
    ["Blocklist entries", s.blocklist.enabled ? s.blocklist.entries : "0 (disabled)"],
  ];
  const o = s.overload;
  if (o) {
    const classes = (v: number[]) => `mice ${v[0] ?? 0}, known ${v[1] ?? 0}, new ${v[2] ?? 0}`;
    rows.push(
      ["Overload", o.overloaded ? "yes (past the redline)" : "no"],
      ["Overload redline", o.capacity > 0 ? `${Math.round(o.capacity)} requests/s` : "none known yet"],
      ["Overload entered", o.entered],
      ["Overload demand (last s)", classes(o.demand)],
      ["Overload pools withheld", classes(o.withheldPools)],
      ["Overload requests withheld", classes(o.withheld)],
    );
  }
  if (s.clock) {
    rows.push(
      ["Stratum", s.clock.stratum],
      ["Reference ID", s.clock.refid],
      ["Leap status", LEAP[s.clock.leap] ?? String(s.clock.leap)],
      ["Root delay", `${s.clock.rootDelay} seconds`],
      ["Root dispersion", `${s.clock.rootDispersion} seconds`],
    );
  }
  rows.push(
    ["Uptime", `${Math.floor(s.uptime)} seconds`],
    ["Server", `${s.server} (ntpshield ${s.version})`],
  );
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value]) => `${label.padEnd(width)} : ${value}`).join("\n");
}

export async function statsCommand(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: "string", short: "u" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(`${STATS_USAGE}\n`);
      return 0;
    }
    const base = monitorBase(values.url ?? DEFAULT_MONITOR_URL);
    const answer = await getJson<StatsAnswer>(base, "/api/stats");
    if (typeof answer?.packets?.received !== "number")
      throw new MonitorError("ERR_MONITOR_FORMAT", `${base.href}: /api/stats did not answer with counters`);
    process.stdout.write(values.json ? `${JSON.stringify(answer, null, 2)}\n` : `${formatStats(answer)}\n`);
    return 0;
  } catch (err) {
    return reportFailure("stats", err);
  }
}
