// `ntpshield top`: a live terminal view of a running server, refreshed every second: packets per second
// (served, gapped, KoD, denied, ignored), the MRU list's state and its top talkers (paper §5's elephants)
// in ntpq's mrulist columns. Read from the monitoring endpoint (docs/monitoring.md). q quits.
//
// Rates come from two readings of the counters and the server's own clock at each (takenAt), not from
// this process's timer, so a slow refresh does not inflate or deflate them. In a terminal the view is
// drawn on the alternate screen (the shell's screen comes back on exit) by moving the cursor home and
// overwriting, which does not flicker; elsewhere (a pipe, a file, cron) it prints one frame and says so.

import { parseArgs } from "node:util";
import {
  type ClientsAnswer,
  DEFAULT_MONITOR_URL,
  formatClientRow,
  getJson,
  MonitorError,
  MRULIST_HEADER,
  monitorBase,
  reportFailure,
  UsageError,
} from "./clients.ts";
import type { StatsAnswer } from "./stats.ts";

export const TOP_USAGE = `usage: ntpshield top [--url URL] [--interval S] [--sort [-]KEY] [--once]

A live view of a running server: packets per second (served, gapped, KoD, denied), the MRU list and its
top talkers, refreshed every second. q (or Ctrl-C) quits. When standard output is not a terminal, or with
--once, it prints one frame (rates over one interval) and exits.

  --url       the monitoring endpoint (default ${DEFAULT_MONITOR_URL}, the server's [http] listen)
  --interval  seconds between refreshes (default 1; 0.2 to 60)
  --sort      order of the talkers, as ntpq's mrulist sort= (default -count: most packets first)
  --once      print one frame and exit, even in a terminal`;

type TopStats = StatsAnswer & { takenAt: number };

const ESC = "\x1b[";
const ALT_SCREEN_ON = `${ESC}?1049h`;
const ALT_SCREEN_OFF = `${ESC}?1049l`;
const CURSOR_HIDE = `${ESC}?25l`;
const CURSOR_SHOW = `${ESC}?25h`;
const HOME = `${ESC}H`;
const CLEAR_LINE = `${ESC}K`;
const CLEAR_BELOW = `${ESC}J`;

function rate(now: number, before: number, seconds: number): string {
  if (!(seconds > 0)) return "-";
  const r = Math.max(0, (now - before) / seconds);
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

function uptimeText(s: number): string {
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  const hms = `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}`;
  return d > 0 ? `${d}d ${hms}` : hms;
}

/** The frame's lines (without colours or cursor movement), at most `height` of them (0 = no limit). */
export function renderFrame(
  before: TopStats | undefined,
  now: TopStats,
  clients: ClientsAnswer | undefined,
  height = 0,
  error?: string,
): string[] {
  const dt = before ? now.takenAt - before.takenAt : 0;
  const p = now.packets;
  const q = before?.packets;
  const kod = (x: TopStats["packets"]) => x.kod.RATE + x.kod.RSTR + (x.kod.DENY ?? 0);
  const r = (a: number, b: number | undefined) => (b === undefined ? "-" : rate(a, b, dt));
  const clock = now.clock ? `stratum ${now.clock.stratum} ${now.clock.refid}` : "clock unknown";
  const when = new Date(now.takenAt * 1000).toISOString().slice(0, 19).replace("T", " ");
  const lines = [
    `ntpshield top  ${now.server}  ${clock}  up ${uptimeText(now.uptime)}  ${when} UTC`,
    `packets/s  received ${r(p.received, q?.received)}  served ${r(p.accepted, q?.accepted)}  ` +
      `gapped ${r(p.rateLimited, q?.rateLimited)}  KoD ${r(kod(p), q ? kod(q) : undefined)}  ` +
      `denied ${r(p.denied, q?.denied)}  ignored ${r(p.ignored, q?.ignored)}`,
    `total      received ${p.received}  served ${p.accepted}  gapped ${p.rateLimited}  KoD ${kod(p)}  ` +
      `denied ${p.denied}  ignored ${p.ignored}`,
    `MRU ${now.mru.size} of ${now.mru.capacity} (evicted ${now.mru.evicted}, recycled ${now.mru.recycled}, ` +
      `refused ${now.mru.refused})  blocklist ${now.blocklist.enabled ? now.blocklist.entries : "off"}`,
    overloadLine(now),
    error ? `! ${error}` : "",
    MRULIST_HEADER,
  ];
  for (const c of clients?.clients ?? []) lines.push(formatClientRow(c));
  return height > 0 ? lines.slice(0, height) : lines;
}

/** Overload control's state in one line: the redline, the last second's demand and what is withheld. */
function overloadLine(now: TopStats): string {
  const o = now.overload;
  if (!o) return "";
  const redline = o.capacity > 0 ? `redline ${Math.round(o.capacity)}/s` : "redline not known yet";
  const demand = o.demand.reduce((a, b) => a + b, 0);
  const pools = `mice ${o.withheldPools[0]}, known ${o.withheldPools[1]}, new ${o.withheldPools[2]} of 64`;
  return o.overloaded
    ? `OVERLOAD  ${redline}  demand ${demand}/s  pools withheld: ${pools}`
    : `overload no  ${redline}  demand ${demand}/s`;
}

function parseInterval(text: string | undefined): number {
  if (text === undefined) return 1;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0.2 || n > 60)
    throw new UsageError(`--interval must be 0.2 to 60 seconds, got ${JSON.stringify(text)}`);
  return n;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function topCommand(argv: string[]): Promise<number> {
  let values: { url?: string; interval?: string; sort?: string; once?: boolean; help?: boolean };
  let base: URL;
  let intervalMs: number;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: "string", short: "u" },
        interval: { type: "string", short: "i" },
        sort: { type: "string" },
        once: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
    if (values.help) {
      process.stdout.write(`${TOP_USAGE}\n`);
      return 0;
    }
    base = monitorBase(values.url ?? DEFAULT_MONITOR_URL);
    intervalMs = parseInterval(values.interval) * 1000;
  } catch (err) {
    return reportFailure("top", err);
  }
  const sort = values.sort ?? "-count";
  const read = async (rows: number) => {
    const stats = await getJson<TopStats>(base, "/api/stats");
    if (typeof stats?.packets?.received !== "number")
      throw new MonitorError("ERR_MONITOR_FORMAT", `${base.href}: /api/stats did not answer with counters`);
    const q = new URLSearchParams({ sort, limit: String(Math.max(1, rows)) });
    const clients = await getJson<ClientsAnswer>(base, `/api/clients?${q}`);
    return { stats, clients };
  };

  const live = process.stdout.isTTY === true && !values.once;
  if (!live) {
    // One frame: two readings one interval apart, so that the rates mean something.
    try {
      if (!values.once)
        process.stderr.write(
          "ntpshield top: standard output is not a terminal: printing one frame (run it in a terminal for the live view)\n",
        );
      const first = await getJson<TopStats>(base, "/api/stats");
      await sleep(intervalMs);
      const { stats, clients } = await read(20);
      process.stdout.write(`${renderFrame(first, stats, clients).join("\n")}\n`);
      return 0;
    } catch (err) {
      return reportFailure("top", err);
    }
  }
  return await runLive(read, intervalMs);
}

/** The live view in a terminal until q, Ctrl-C, SIGTERM or a lost terminal. */
async function runLive(
  read: (rows: number) => Promise<{ stats: TopStats; clients: ClientsAnswer }>,
  intervalMs: number,
): Promise<number> {
  const out = process.stdout;
  const stdin = process.stdin;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  const onKey = (data: Buffer) => {
    const k = data.toString("utf8");
    if (k.includes("q") || k.includes("Q") || k.includes("\x03") || k.includes("\x04")) stop();
  };
  out.write(ALT_SCREEN_ON + CURSOR_HIDE);
  if (stdin.isTTY) stdin.setRawMode(true);
  // Keys come from a terminal in raw mode, or line by line from a pipe ("q" then Enter); a pipe that ends
  // (< /dev/null) leaves Ctrl-C and SIGTERM to stop it.
  stdin.on("data", onKey);
  stdin.resume();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  process.once("SIGHUP", stop);
  let before: TopStats | undefined;
  let last: { stats: TopStats; clients: ClientsAnswer } | undefined;
  try {
    while (!stopped) {
      const height = out.rows > 0 ? out.rows : 24;
      const width = out.columns > 0 ? out.columns : 80;
      let error: string | undefined;
      try {
        const next = await read(Math.max(1, height - 8));
        before = last?.stats;
        last = next;
      } catch (err) {
        if (!(err instanceof MonitorError)) throw err;
        error = err.message;
      }
      if (stopped) break;
      const lines = last
        ? renderFrame(before, last.stats, last.clients, height - 1, error)
        : [`ntpshield top: ${error ?? "connecting"}`];
      lines.push("(q quits)");
      out.write(HOME + lines.map((l) => l.slice(0, width) + CLEAR_LINE).join("\r\n") + CLEAR_BELOW);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    stdin.off("data", onKey);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    process.off("SIGHUP", stop);
    out.write(CURSOR_SHOW + ALT_SCREEN_OFF);
  }
  return 0;
}
