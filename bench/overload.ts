// The overload benchmark, `npx node bench/overload.ts [--help]`: each server (chronyd, ntpshield) runs pinned
// to core 0 inside a cgroup that caps it at a share of the core (a quarter by default), and is flooded, as
// the Wisconsin routers flooded their server (paper §3), while a population of well-behaved mice keeps
// polling it. Reports, per server and in one run, how many of the mice's requests were answered while the
// flood lasted, how many of all requests, replies per second, replies per CPU-second and the server's RSS.
//
// Why a cap: on two cores, one generator core cannot out-send an uncapped server on loopback (bench/run.ts
// finds the generator's ceiling near the servers' own); capped, the server's capacity drops to a rate the
// generator can offer two or three times over. Method and figures: docs/benchmarks.md.
//
// Phases, all pinned as run.ts pins them (server core 0, generators core 1, nice -20 as root):
//   1. capacity: each server, fresh and capped, answers a short ladder of offered rates (every request from
//      a new source, as run.ts does); the highest rate answered at >= 99% is its capacity (or --capacity).
//   2. flood: each server, started afresh, is polled by the mice (fixed addresses, each every --poll s) for
//      a warm-up of 2.5 polls, so that every mouse has been seen at least twice; then the flood starts (a
//      --flood-factor multiple of the capacity, from --flood-sources addresses, each repeating in turn) and
//      the mice go on polling through it. Only the mice's requests sent during the flood are counted.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  BARE_CONFIG,
  BenchError,
  type CoreShares,
  CoreWatch,
  CpuCgroup,
  checkMachine,
  chronyLaunch,
  fmt,
  freePort,
  GOOD_RATIO,
  KEPT_UP,
  killChildren,
  type Launch,
  LOAD_CPU,
  type LoadResult,
  ntpshieldLaunch,
  optionsOrExit,
  parseNumber,
  parseRate,
  pct,
  pinned,
  prepareMachine,
  processRss,
  type Running,
  runBench,
  runLoad,
  SERVER_CPU,
  startServer,
} from "./harness.ts";

export { BenchError };

/**
 * Source numbers (ntpload's --first-source: 0 is 127.1.0.0): the flood takes them from 0 up, the capacity
 * ladder from LADDER_BASE up, the mice from MICE_BASE (127.245.36.0) up, so the three never meet.
 */
const LADDER_BASE = 8_000_000;
const MICE_BASE = 16_000_000;
const SOURCE_SPAN = 254 * 65536;

const SECONDS = "a number of seconds";

const USAGE = `usage: npx node bench/overload.ts [--servers LIST] [--ntpshield-config FILE] [--cpu-share F]
                                  [--cpu-period-us US] [--mice N] [--poll S] [--mice-warmup S]
                                  [--flood-sources N] [--flood-factor X] [--flood-basis max|own]
                                  [--flood-duration S] [--capacity RATE | --flood-rate RATE]
                                  [--ladder-start RATE] [--step S] [--json] [--no-nice]

  --servers LIST          in order, any of: chrony (chronyd as a public server: allow all, ratelimit
                          with chrony's defaults); ntpshield (its defaults, or --ntpshield-config);
                          ntpshield-bare (every defence off); ntpshield=FILE (ntpshield with the TOML
                          file FILE). Default chrony,ntpshield
  --ntpshield-config FILE the configuration of "ntpshield" (ntpshield serve --config FILE); the
                          benchmark adds --listen, --threads 1 and --http 127.0.0.1:0
  --cpu-share F           the cap: share of one core the server may use (default 0.25)
  --cpu-period-us US      the cap's period (cfs_period_us, cpu.max; default 100000)
  --mice N                well-behaved clients at fixed addresses (default 2000)
  --poll S                seconds between one mouse's requests (default 16, at most 64)
  --mice-warmup S         seconds the mice poll before the flood (default 2.5 x --poll)
  --flood-sources N       distinct flood addresses, each repeating in turn (default 500000)
  --flood-factor X        the flood is X times the capped capacity (default 2.5)
  --flood-basis max|own   max: every server gets the same flood, X times the largest capacity measured
                          (default); own: each server gets X times its own capacity
  --flood-duration S      seconds of flood (default 20)
  --capacity RATE         skip the ladder: take RATE as every server's capacity
  --flood-rate RATE       skip the ladder: offer this flood to every server
  --ladder-start RATE     the capacity ladder's first rate (default 10k); it doubles until a step falls
                          below 99%, then halves the gap until it is within 15% (eight steps at most)
  --step S                measured seconds per ladder step, after 0.5 s of warm-up (default 2)
  --json                  print one JSON line on stdout (the table then goes to stderr)
  --no-nice               do not raise the priority of server and generators (nice -20)

Needs root (the cgroup), Linux, two cores, cc, taskset, chronyd. The server runs on core ${SERVER_CPU} in a cgroup
the benchmark makes and removes; the generators (bench/ntpload.c) on core ${LOAD_CPU}; loopback only.`;

// ---- options ---------------------------------------------------------------------------------------------

export interface ServerSpec {
  /** As given: chrony, ntpshield, ntpshield-bare or ntpshield=FILE. */
  name: string;
  kind: "chrony" | "ntpshield";
  config?: string;
  configFile?: string;
}

export interface Options {
  servers: ServerSpec[];
  cpuShare: number;
  cpuPeriodUs: number;
  mice: number;
  poll: number;
  miceWarmup: number;
  floodSources: number;
  floodFactor: number;
  floodBasis: "max" | "own";
  floodDuration: number;
  capacity: number | null;
  floodRate: number | null;
  ladderStart: number;
  step: number;
  json: boolean;
  nice: boolean;
}

function parseServers(list: string, ntpshieldConfig: string | undefined): ServerSpec[] {
  const specs: ServerSpec[] = [];
  for (const raw of list.split(",")) {
    const name = raw.trim();
    if (specs.some((s) => s.name === name)) continue;
    if (name === "chrony") specs.push({ name, kind: "chrony" });
    else if (name === "ntpshield") {
      specs.push(
        ntpshieldConfig === undefined
          ? { name, kind: "ntpshield" }
          : { name, kind: "ntpshield", configFile: resolve(ntpshieldConfig) },
      );
    } else if (name === "ntpshield-bare") specs.push({ name, kind: "ntpshield", config: BARE_CONFIG });
    else if (name.startsWith("ntpshield=") && name.length > "ntpshield=".length) {
      specs.push({ name, kind: "ntpshield", configFile: resolve(name.slice("ntpshield=".length)) });
    } else {
      throw new BenchError(
        "ERR_BENCH_OPTION",
        `--servers: unknown server "${name}" (known: chrony, ntpshield, ntpshield-bare, ntpshield=FILE)`,
      );
    }
  }
  return specs;
}

export function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      servers: { type: "string", default: "chrony,ntpshield" },
      "ntpshield-config": { type: "string" },
      "cpu-share": { type: "string", default: "0.25" },
      "cpu-period-us": { type: "string", default: "100000" },
      mice: { type: "string", default: "2000" },
      poll: { type: "string", default: "16" },
      "mice-warmup": { type: "string" },
      "flood-sources": { type: "string", default: "500000" },
      "flood-factor": { type: "string", default: "2.5" },
      "flood-basis": { type: "string", default: "max" },
      "flood-duration": { type: "string", default: "20" },
      capacity: { type: "string" },
      "flood-rate": { type: "string" },
      "ladder-start": { type: "string", default: "10k" },
      step: { type: "string", default: "2" },
      json: { type: "boolean", default: false },
      nice: { type: "boolean", default: true },
      help: { type: "boolean", short: "h", default: false },
    },
    allowNegative: true,
    strict: true,
  });
  if (values.help) return null;
  const poll = parseNumber("--poll", values.poll, 1, 64, SECONDS);
  const basis = values["flood-basis"];
  if (basis !== "max" && basis !== "own") {
    throw new BenchError("ERR_BENCH_OPTION", `--flood-basis must be max or own, got "${basis}"`);
  }
  if (values.capacity !== undefined && values["flood-rate"] !== undefined) {
    throw new BenchError("ERR_BENCH_OPTION", "--capacity and --flood-rate exclude each other");
  }
  const rate = (name: string, text: string | undefined) => {
    if (text === undefined) return null;
    try {
      return parseRate(text);
    } catch {
      throw new BenchError("ERR_BENCH_OPTION", `${name}: "${text}" is not a rate in 1..5M (e.g. 40000, 40k)`);
    }
  };
  return {
    servers: parseServers(values.servers, values["ntpshield-config"]),
    cpuShare: parseNumber("--cpu-share", values["cpu-share"], 0.01, 1),
    cpuPeriodUs: Math.round(parseNumber("--cpu-period-us", values["cpu-period-us"], 1000, 1_000_000)),
    mice: Math.round(parseNumber("--mice", values.mice, 1, SOURCE_SPAN - MICE_BASE)),
    poll,
    miceWarmup:
      values["mice-warmup"] === undefined
        ? 2.5 * poll
        : parseNumber("--mice-warmup", values["mice-warmup"], 0, 300, SECONDS),
    floodSources: Math.round(parseNumber("--flood-sources", values["flood-sources"], 1, MICE_BASE)),
    floodFactor: parseNumber("--flood-factor", values["flood-factor"], 1, 10),
    floodBasis: basis,
    floodDuration: parseNumber("--flood-duration", values["flood-duration"], 2, 120, SECONDS),
    capacity: rate("--capacity", values.capacity),
    floodRate: rate("--flood-rate", values["flood-rate"]),
    ladderStart: rate("--ladder-start", values["ladder-start"]) ?? 10_000,
    step: parseNumber("--step", values.step, 0.5, 30, SECONDS),
    json: values.json,
    nice: values.nice,
  };
}

// ---- servers ---------------------------------------------------------------------------------------------

const tempDirs = new Set<string>();
let cgroup: CpuCgroup | undefined;

function log(line: string): void {
  process.stderr.write(`overload: ${line}\n`);
}

function launchFor(spec: ServerSpec, port: number, dir: string): Launch {
  if (spec.kind === "chrony") {
    // As a public server runs it: every client allowed, answers rate-limited per client with chrony's
    // defaults (interval 3, i.e. one answer per 8 s on average; burst 8; leak 2: one in four limited
    // requests answered anyway); the client log at its default size.
    return chronyLaunch(port, dir, ["ratelimit"]);
  }
  // The monitoring endpoint on any free port: the defaults' 11124 may be taken by another server.
  const extra = ["--http", "127.0.0.1:0"];
  if (spec.config !== undefined) return ntpshieldLaunch(port, dir, { config: spec.config, extra });
  if (spec.configFile !== undefined)
    return ntpshieldLaunch(port, dir, { configFile: spec.configFile, extra });
  return ntpshieldLaunch(port, dir, { extra });
}

/** Runs `body` with the server `spec` started afresh, capped, and stopped afterwards however body ends. */
async function withServer<T>(
  spec: ServerSpec,
  opts: Options,
  cap: CpuCgroup,
  body: (server: Running, port: number, command: string) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(os.tmpdir(), "ntpshield-overload-"));
  tempDirs.add(dir);
  let server: Running | undefined;
  try {
    const port = await freePort();
    const launch = launchFor(spec, port, dir);
    const command = pinned(SERVER_CPU, launch.argv, opts.nice).join(" ");
    server = await startServer(spec.name, launch, port, opts.nice, cap);
    const result = await body(server, port, command);
    if (!server.alive) {
      throw new BenchError(
        "ERR_BENCH_SERVER_DIED",
        `${spec.name} exited (code ${server.exitCode}): ${server.output()}`,
      );
    }
    return result;
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

/** What the capped group used over a window: CPU-seconds, that per second, the cap's periods and the
 *  share of them in which the cap held the group back. */
interface CapUse {
  cpuSeconds: number;
  cpuShare: number;
  periods: number;
  throttledShare: number;
}

/** Starts a window on the cap; the function returned ends it. */
function watchCap(cap: CpuCgroup): () => CapUse {
  const start = performance.now();
  const cpu0 = cap.usageSeconds();
  const t0 = cap.throttling();
  return () => {
    const cpuSeconds = cap.usageSeconds() - cpu0;
    const t1 = cap.throttling();
    const periods = t1.periods - t0.periods;
    return {
      cpuSeconds,
      cpuShare: cpuSeconds / Math.max(1e-3, (performance.now() - start) / 1000),
      periods,
      throttledShare: periods > 0 ? (t1.throttled - t0.throttled) / periods : 0,
    };
  };
}

/**
 * Others (processes, the hypervisor) took core 0 and the server may have missed time for it: a server the
 * cap held back in nearly every period had all the time the cap gives, whoever else wanted the core.
 */
function contended(cores: CoreShares, use: CapUse): boolean {
  return cores.contended && use.throttledShare < 0.9;
}

// ---- phase 1: the capped server's capacity ---------------------------------------------------------------

export interface LadderStep {
  offered: number;
  sendRate: number;
  ratio: number;
  serverDrops: number;
  /** CPU-seconds of the cgroup per second of the step (warm-up included): at most the cap. */
  cpuShare: number;
  generatorShort: boolean;
  /** See contended(). */
  contended: boolean;
}

/** The step answered at >= 99% with the offered rate actually sent. */
function good(s: LadderStep): boolean {
  return s.ratio >= GOOD_RATIO && !s.generatorShort;
}

/**
 * The next rate of the ladder: double while every step is good; once one is not, halve the gap between
 * the highest good and the lowest bad rate; null when the gap is within 15% or after eight steps.
 */
export function nextRate(steps: readonly LadderStep[], start: number): number | null {
  if (steps.length === 0) return start;
  if (steps.length >= 8) return null;
  const goods = steps.filter(good).map((s) => s.offered);
  const bads = steps.filter((s) => !good(s)).map((s) => s.offered);
  const lo = goods.length ? Math.max(...goods) : 0;
  const hi = bads.length ? Math.min(...bads) : Number.POSITIVE_INFINITY;
  if (hi === Number.POSITIVE_INFINITY) return lo * 2 > 5_000_000 ? null : lo * 2;
  if (lo > 0 && hi / lo <= 1.15) return null;
  if (lo === 0 && hi <= 500) return null;
  const mid = Math.round((lo + hi) / 2 / 500) * 500;
  return mid <= lo || mid >= hi ? null : mid;
}

export function capacityOf(steps: readonly LadderStep[]): number | null {
  const goods = steps.filter(good).map((s) => s.offered);
  const bad = Math.min(...steps.filter((s) => !good(s)).map((s) => s.offered));
  // A good step above a bad one was luck between hiccups; the capacity is below the lowest failure.
  const below = goods.filter((r) => r < bad);
  return below.length ? Math.max(...below) : null;
}

async function ladder(
  spec: ServerSpec,
  opts: Options,
  cap: CpuCgroup,
): Promise<{ steps: LadderStep[]; command: string }> {
  return withServer(spec, opts, cap, async (server, port, command) => {
    const steps: LadderStep[] = [];
    let source = LADDER_BASE;
    for (
      let rate = nextRate(steps, opts.ladderStart);
      rate !== null;
      rate = nextRate(steps, opts.ladderStart)
    ) {
      let step: LadderStep | undefined;
      // One retry of a step that failed because the generator fell behind (not for a busy core 0: above
      // the capacity every step fails that way, and the bisection already tries the rates around it).
      for (let attempt = 0; attempt < 2; attempt++) {
        const watch = new CoreWatch(server.pid);
        const capEnd = watchCap(cap);
        const warmup = 0.5;
        if (source + rate * (opts.step + warmup + 1) >= MICE_BASE) source = LADDER_BASE;
        const r = await runLoad<LoadResult>(
          [
            "--target",
            `127.0.0.1:${port}`,
            "--rate",
            String(rate),
            "--duration",
            String(opts.step),
            "--warmup",
            String(warmup),
            "--first-source",
            String(source),
          ],
          opts.nice,
          (opts.step + warmup + 15) * 1000,
        );
        const cores = watch.end();
        const use = capEnd();
        source = r.next_source;
        const s: LadderStep = {
          offered: rate,
          sendRate: r.send_pps,
          ratio: r.ratio,
          serverDrops: r.target_drops,
          cpuShare: use.cpuShare,
          generatorShort: r.sent < KEPT_UP * rate * r.duration_s,
          contended: contended(cores, use),
        };
        log(
          `${spec.name} capacity ${fmt(rate).padStart(9)} offered: ratio ${s.ratio.toFixed(4)}, sent ` +
            `${fmt(s.sendRate)}/s, cgroup cpu ${pct(s.cpuShare)}, server-socket drops ${fmt(s.serverDrops)}` +
            `${s.generatorShort ? " g" : ""}${s.contended ? " c" : ""}${attempt ? " (retry)" : ""}`,
        );
        if (!step || s.ratio > step.ratio) step = s;
        if (good(s) || !s.generatorShort || !server.alive) break;
      }
      if (step) steps.push(step);
      if (!server.alive) break;
    }
    return { steps, command };
  });
}

// ---- phase 2: mice through the flood ---------------------------------------------------------------------

export interface FloodRun {
  server: string;
  command: string;
  error: string | null;
  /** Capacity at >= 99% under the cap (requests/s), from the ladder or --capacity; null if none. */
  capacity: number | null;
  ladder: LadderStep[];
  floodOffered: number;
  floodSources: number;
  /** Seconds between two requests of one flood source. */
  floodSourceInterval: number;
  seconds: number;
  mice: {
    sent: number;
    valid: number;
    kod: number;
    served: number;
    warmupSent: number;
    warmupValid: number;
  };
  flood: { sent: number; sendRate: number; valid: number; kod: number; served: number; skipped: number };
  /** Every request sent during the flood, mice and flood together. */
  all: { sent: number; valid: number; served: number };
  repliesPerSecond: number;
  /** CPU-seconds the cgroup used during the flood, that per second, and valid replies per CPU-second. */
  cpuSeconds: number;
  cpuShare: number;
  repliesPerCpuSecond: number;
  /** Periods of the cap during the flood, and the share of them in which the cap held the server back. */
  capPeriods: number;
  capThrottledShare: number;
  rssBytes: number;
  serverDrops: number;
  cores: CoreShares | null;
  /** See contended(): the server may have had less time than its cap gives. */
  contended: boolean;
  generatorShort: boolean;
}

function emptyRun(spec: ServerSpec, capacity: number | null, ladderSteps: LadderStep[]): FloodRun {
  return {
    server: spec.name,
    command: "",
    error: null,
    capacity,
    ladder: ladderSteps,
    floodOffered: 0,
    floodSources: 0,
    floodSourceInterval: 0,
    seconds: 0,
    mice: { sent: 0, valid: 0, kod: 0, served: 0, warmupSent: 0, warmupValid: 0 },
    flood: { sent: 0, sendRate: 0, valid: 0, kod: 0, served: 0, skipped: 0 },
    all: { sent: 0, valid: 0, served: 0 },
    repliesPerSecond: 0,
    cpuSeconds: 0,
    cpuShare: 0,
    repliesPerCpuSecond: 0,
    capPeriods: 0,
    capThrottledShare: 0,
    rssBytes: Number.NaN,
    serverDrops: 0,
    cores: null,
    contended: false,
    generatorShort: false,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function flood(run: FloodRun, spec: ServerSpec, opts: Options, cap: CpuCgroup): Promise<void> {
  await withServer(spec, opts, cap, async (server, port, command) => {
    run.command = command;
    const target = `127.0.0.1:${port}`;
    const warm = opts.miceWarmup;
    const d = opts.floodDuration;
    const miceRate = opts.mice / opts.poll;
    log(
      `${spec.name}: ${fmt(opts.mice)} mice polling every ${opts.poll} s (${miceRate.toFixed(1)} requests/s) ` +
        `for ${warm} s, then a flood of ${fmt(run.floodOffered)}/s from ${fmt(run.floodSources)} sources ` +
        `(each every ${run.floodSourceInterval.toFixed(1)} s) for ${d} s`,
    );
    // Started together: the mice's warm-up and the flood's delay end at the same moment, so the mice's
    // measured window is the flood's.
    const mice = runLoad<LoadResult>(
      [
        "--target",
        target,
        "--rate",
        String(miceRate),
        "--sources",
        String(opts.mice),
        "--first-source",
        String(MICE_BASE),
        "--warmup",
        String(warm),
        "--duration",
        String(d),
        "--batch",
        "8",
        // Sleeps between requests: the flood's generator spins on the same core.
        "--sleep-us",
        "1000",
      ],
      opts.nice,
      (warm + d + 20) * 1000,
    );
    const flooding = runLoad<LoadResult>(
      [
        "--target",
        target,
        "--rate",
        String(run.floodOffered),
        "--sources",
        String(run.floodSources),
        "--first-source",
        "0",
        "--delay",
        String(warm),
        "--duration",
        String(d),
      ],
      opts.nice,
      (warm + d + 20) * 1000,
    );
    // Neither rejection may go unheard while the other is awaited.
    const both = Promise.all([mice, flooding]);
    both.catch(() => {});
    await Promise.race([sleep(warm * 1000), both]);
    const capEnd = watchCap(cap);
    const watch = new CoreWatch(server.pid);
    await Promise.race([sleep(d * 1000), both]);
    const use = capEnd();
    run.rssBytes = processRss(server.pid);
    run.cores = watch.end();
    const [m, f] = await both;
    run.seconds = f.duration_s;
    run.mice = {
      sent: m.sent,
      valid: m.valid,
      kod: m.kod,
      served: m.sent ? m.valid / m.sent : 0,
      warmupSent: m.warmup_sent,
      warmupValid: m.warmup_valid,
    };
    run.flood = {
      sent: f.sent,
      sendRate: f.send_pps,
      valid: f.valid,
      kod: f.kod,
      served: f.sent ? f.valid / f.sent : 0,
      skipped: f.skipped,
    };
    const sent = m.sent + f.sent;
    const valid = m.valid + f.valid;
    run.all = { sent, valid, served: sent ? valid / sent : 0 };
    run.repliesPerSecond = valid / f.duration_s;
    run.cpuSeconds = use.cpuSeconds;
    run.cpuShare = use.cpuShare;
    run.repliesPerCpuSecond = use.cpuSeconds > 0 ? valid / use.cpuSeconds : 0;
    run.capPeriods = use.periods;
    run.capThrottledShare = use.throttledShare;
    run.contended = contended(run.cores, use);
    run.serverDrops = f.target_drops;
    run.generatorShort = f.sent < KEPT_UP * run.floodOffered * f.duration_s;
    log(
      `${spec.name}: mice served ${percent(run.mice.served)} (${fmt(m.valid)} of ${fmt(m.sent)}; warm-up ` +
        `${fmt(m.warmup_valid)} of ${fmt(m.warmup_sent)}), all served ${percent(run.all.served)}, ` +
        `${fmt(run.repliesPerSecond)} replies/s, cgroup cpu ${pct(run.cpuShare)} (throttled in ` +
        `${pct(run.capThrottledShare)} of periods), ${fmt(run.repliesPerCpuSecond)} replies per CPU-s, RSS ` +
        `${mib(run.rssBytes)}, flood sent ${fmt(f.send_pps)}/s, server-socket drops ${fmt(f.target_drops)}` +
        `${run.generatorShort ? " g" : ""}${run.contended ? " c" : ""}`,
    );
  });
}

// ---- report ----------------------------------------------------------------------------------------------

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function mib(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(1)} MiB` : "-";
}

export function table(runs: readonly FloodRun[]): string {
  const header = [
    "server",
    "capacity >= 99%",
    "flood offered/s",
    "mice served",
    "all served",
    "replies/s",
    "replies per CPU-s",
    "CPU",
    "RSS",
  ];
  const rows = runs.map((r) => {
    if (r.error && r.mice.sent === 0) {
      return [r.server, r.capacity === null ? "-" : fmt(r.capacity), "failed", "-", "-", "-", "-", "-", "-"];
    }
    const flags = `${r.generatorShort ? " g" : ""}${r.contended ? " c" : ""}`;
    return [
      r.server,
      r.capacity !== null ? fmt(r.capacity) : r.ladder.length ? "none" : "-",
      `${fmt(r.floodOffered)}${flags}`,
      percent(r.mice.served),
      percent(r.all.served),
      fmt(r.repliesPerSecond),
      fmt(r.repliesPerCpuSecond),
      pct(r.cpuShare),
      mib(r.rssBytes),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join(" | ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)];
  if (runs.some((r) => r.seconds > 0 && r.floodSourceInterval > r.seconds / 2)) {
    out.push(
      "NOTE: each flood source sent fewer than two requests during the flood: give fewer --flood-sources or a " +
        "longer --flood-duration for a flood of repeating sources",
    );
  }
  if (runs.some((r) => r.generatorShort)) {
    out.push(`g: the flood's generator sent less than ${pct(KEPT_UP)} of the offered rate`);
  }
  if (runs.some((r) => r.contended)) {
    out.push(
      `c: other processes or the hypervisor took more than 10% of core ${SERVER_CPU} during the flood, and the ` +
        "server was not held back by its cap in 90% of the periods: it may have had less than the cap",
    );
  }
  for (const r of runs) if (r.error) out.push(`${r.server} failed: ${r.error}`);
  return out.join("\n");
}

// ---- main ------------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const opts = optionsOrExit("overload", argv, parseOptions, USAGE);
  if (typeof opts === "number") return opts;
  checkMachine();
  if (process.getuid?.() !== 0) {
    throw new BenchError("ERR_BENCH_ROOT", "the benchmark needs root: it caps the server with a cgroup");
  }
  const machine = await prepareMachine(opts.nice, log);

  const cap = CpuCgroup.create(
    `ntpshield-overload-${process.pid}`,
    opts.cpuShare,
    opts.cpuPeriodUs,
    opts.nice,
  );
  cgroup = cap;
  log(
    `cap: cgroup v${cap.version} ${cap.dirs.join(", ")}: ${opts.cpuShare} of a core ` +
      `(${Math.round(opts.cpuShare * opts.cpuPeriodUs)} us every ${opts.cpuPeriodUs} us)`,
  );
  const runs: FloodRun[] = [];
  try {
    // Phase 1: capacities.
    for (const spec of opts.servers) {
      const run = emptyRun(spec, opts.capacity, []);
      runs.push(run);
      if (opts.capacity !== null || opts.floodRate !== null) continue;
      try {
        const { steps, command } = await ladder(spec, opts, cap);
        run.command = command;
        run.ladder = steps;
        run.capacity = capacityOf(steps);
        log(
          `${spec.name}: capacity at >= 99% under the cap: ${run.capacity === null ? "none" : fmt(run.capacity)}`,
        );
      } catch (err) {
        run.error = (err as Error).message;
        log(`${spec.name}: FAILED: ${run.error}`);
      }
    }
    const capacities = runs.map((r) => r.capacity).filter((c): c is number => c !== null);
    const largest = capacities.length ? Math.max(...capacities) : null;
    // Phase 2: the flood.
    for (const [i, spec] of opts.servers.entries()) {
      const run = runs[i]!;
      if (run.error) continue;
      const basis = opts.floodBasis === "own" ? run.capacity : largest;
      const offered =
        opts.floodRate ?? (basis === null ? null : Math.round((basis * opts.floodFactor) / 100) * 100);
      if (offered === null) {
        run.error =
          "no capacity at >= 99% under the cap: nothing to multiply (give --capacity or --flood-rate)";
        continue;
      }
      run.floodOffered = offered;
      run.floodSources = opts.floodSources;
      run.floodSourceInterval = opts.floodSources / offered;
      try {
        await flood(run, spec, opts, cap);
      } catch (err) {
        run.error = (err as Error).message;
        log(`${spec.name}: FAILED: ${run.error}`);
      }
    }
  } finally {
    killChildren();
    cap.remove();
    cgroup = undefined;
  }

  const first = runs.find((r) => r.floodOffered > 0);
  const heading =
    `ntpshield overload benchmark: ${machine.cpus} x ${machine.model}; server on core ${SERVER_CPU} capped at ` +
    `${opts.cpuShare} of it (cgroup v${cap.version}, period ${opts.cpuPeriodUs / 1000} ms), generators on core ` +
    `${LOAD_CPU}; ${fmt(opts.mice)} mice every ${opts.poll} s from ${opts.miceWarmup} s before the flood; flood ` +
    `${opts.floodRate !== null ? "given" : `${opts.floodFactor} x ${opts.floodBasis === "max" ? "the largest" : "each server's own"} capacity`} ` +
    `from ${fmt(opts.floodSources)} sources` +
    `${first ? ` (each every ${first.floodSourceInterval.toFixed(1)} s)` : ""} for ${opts.floodDuration} s`;
  const text = `\n${heading}\n\n${table(runs)}\n`;
  if (opts.json) {
    process.stderr.write(text);
    const settings = {
      ...opts,
      servers: opts.servers.map((s) => s.name),
      cgroupVersion: cap.version,
      serverCpu: SERVER_CPU,
      loadCpu: LOAD_CPU,
      goodRatio: GOOD_RATIO,
    };
    process.stdout.write(`${JSON.stringify({ machine, settings, servers: runs })}\n`);
  } else {
    process.stdout.write(text);
  }
  return runs.some((r) => r.error) ? 1 : 0;
}

function cleanUp(): void {
  killChildren();
  cgroup?.remove();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runBench("overload", main, { cleanUp });
}
