// The throughput benchmark, `npm run bench [-- options]`: each server in turn (chrony, ntpshield) runs pinned
// to core 0 and answers the same ladder of offered rates from bench/ntpload pinned to core 1; prints the
// replies per second and the reply ratio of each side by side, and the highest offered rate each answers at
// >= 99%. What it measures and what limits it: docs/benchmarks.md.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  BARE_CONFIG,
  BenchError,
  CONTENDED,
  CoreWatch,
  checkMachine,
  chronyLaunch,
  fmt,
  freePort,
  GOOD_RATIO,
  KEPT_UP,
  killChildren,
  type Launch,
  LOAD_BINARY,
  LOAD_CPU,
  type LoadResult,
  ntpshieldLaunch,
  optionsOrExit,
  parseNumber,
  parseRate,
  pct,
  pinned,
  prepareMachine,
  type Running,
  runBench,
  runLoad,
  SERVER_CPU,
  short,
  startServer,
} from "./harness.ts";

export { BenchError, parseRate };

const SERVER_NAMES = ["chrony", "ntpshield", "ntpshield-bare", "ntpshield-acl1000", "reflector"] as const;
type ServerName = (typeof SERVER_NAMES)[number];

const DEFAULT_RATES = [20_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000];

const USAGE = `usage: npm run bench -- [--rates LIST] [--duration S] [--warmup S] [--servers LIST] [--json]
                        [--retries N] [--no-calibrate] [--no-nice]

  --rates LIST     offered request rates, e.g. 20k,50k,100k (default ${DEFAULT_RATES.map(short).join(",")})
  --duration S     measured seconds per step (default 5)
  --warmup S       seconds of load before each step's measurement starts (default 1)
  --servers LIST   any of chrony,ntpshield,ntpshield-bare,ntpshield-acl1000,reflector, in order (default
                   chrony,ntpshield). ntpshield runs its defaults (MRU list, call-gap, KoD on);
                   ntpshield-bare turns every defence off (no MRU record, no call-gap, no KoD);
                   ntpshield-acl1000 is the defaults plus 1,000 access rules
  --retries N      run a step again, up to N times, when it fell below 99% while core ${SERVER_CPU} was taken by
                   others (flag c) or the generator fell behind (flag g); the best try is kept (default 1)
  --json           print one JSON document instead of the table (progress still goes to stderr)
  --no-calibrate   skip the harness-ceiling step (ntpload against its own trivial C responder)
  --no-nice        do not raise the priority of server and generator (nice -20 needs root)

Each server is pinned to core ${SERVER_CPU} and the generator to core ${LOAD_CPU} (taskset); loopback only.`;

interface Options {
  rates: number[];
  duration: number;
  warmup: number;
  servers: ServerName[];
  json: boolean;
  calibrate: boolean;
  nice: boolean;
  retries: number;
}

// ---- options ---------------------------------------------------------------------------------------------

const SECONDS = "a number of seconds";

export function parseOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      rates: { type: "string" },
      duration: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      servers: { type: "string", default: "chrony,ntpshield" },
      json: { type: "boolean", default: false },
      calibrate: { type: "boolean", default: true },
      nice: { type: "boolean", default: true },
      retries: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
    allowNegative: true,
    strict: true,
  });
  if (values.help) return null;
  const rates = values.rates ? values.rates.split(",").map(parseRate) : DEFAULT_RATES;
  const servers = values.servers.split(",").map((s) => s.trim());
  for (const s of servers) {
    if (!(SERVER_NAMES as readonly string[]).includes(s)) {
      throw new BenchError(
        "ERR_BENCH_OPTION",
        `--servers: unknown server "${s}" (known: ${SERVER_NAMES.join(", ")})`,
      );
    }
  }
  return {
    rates: [...new Set(rates)].sort((a, b) => a - b),
    duration: parseNumber("--duration", values.duration, 0.5, 120, SECONDS),
    warmup: parseNumber("--warmup", values.warmup, 0, 30, SECONDS),
    servers: [...new Set(servers)] as ServerName[],
    json: values.json,
    calibrate: values.calibrate,
    nice: values.nice,
    retries: Math.round(parseNumber("--retries", values.retries, 0, 5)),
  };
}

// ---- the machine -----------------------------------------------------------------------------------------

const tempDirs = new Set<string>();

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

// ---- servers ---------------------------------------------------------------------------------------------

/**
 * The defaults plus 1,000 access rules that the benchmark's sources (127.1.0.0 and up) never match, half
 * IPv4 /24s spread over the address space, half IPv6 /48s: the trie is as deep as real rule sets make it.
 */
function acl1000Config(): string {
  const lines = ["[acl]", 'default = ["limited", "kod"]'];
  for (let i = 0; i < 1000; i++) {
    const address =
      i % 2 === 0
        ? `${20 + ((i * 37) % 100)}.${(i * 101) % 256}.${(i * 13) % 256}.0/24`
        : `2001:db8:${((i * 7919) % 65536).toString(16)}::/48`;
    lines.push("[[acl.rule]]", `address = "${address}"`, 'flags = ["limited"]');
  }
  return `${lines.join("\n")}\n`;
}

function launchFor(name: ServerName, port: number, dir: string): Launch {
  switch (name) {
    case "chrony":
      // Chrony as shipped, serving: no ratelimit directive, default client log.
      return chronyLaunch(port, dir);
    case "ntpshield":
      return ntpshieldLaunch(port, dir);
    case "ntpshield-bare":
      return ntpshieldLaunch(port, dir, { config: BARE_CONFIG });
    case "ntpshield-acl1000":
      return ntpshieldLaunch(port, dir, { config: acl1000Config() });
    case "reflector":
      return {
        argv: [LOAD_BINARY, "--reflect", String(port), "--duration", "600"],
        readyLine: '"listening"',
      };
  }
}

// ---- steps -----------------------------------------------------------------------------------------------

export interface Step {
  offered: number;
  sent: number;
  sendRate: number;
  valid: number;
  repliesPerSecond: number;
  ratio: number;
  kod: number;
  invalid: number;
  sendErrors: number;
  /** Requests the generator dropped from its schedule after falling behind (see ntpload.c), and the
   *  largest lag it saw, in packets. */
  skipped: number;
  maxBehind: number;
  /** Replies lost at the generator's own socket: the reply count is then an undercount. */
  generatorDrops: number;
  /** Requests the kernel dropped at the server's sockets (receive buffer full) in the measured window;
   *  -1 if /proc/net/udp could not be read. */
  serverDrops: number;
  /** Shares of the cores over the step (harness.ts CoreShares). */
  serverCpu: number;
  core0Busy: number;
  core0Other: number;
  core0Steal: number;
  core1Steal: number;
  generatorShort: boolean;
  contended: boolean;
}

async function measure(
  server: Running,
  port: number,
  rate: number,
  opts: Options,
  firstSource: number,
): Promise<{ step: Step; nextSource: number }> {
  // Shares of one core over the whole ntpload run (warm-up included).
  const watch = new CoreWatch(server.pid);
  const r = await runLoad<LoadResult>(
    [
      "--target",
      `127.0.0.1:${port}`,
      "--rate",
      String(rate),
      "--duration",
      String(opts.duration),
      "--warmup",
      String(opts.warmup),
      "--first-source",
      String(firstSource),
    ],
    opts.nice,
    (opts.duration + opts.warmup + 15) * 1000,
  );
  const cores = watch.end();
  const step: Step = {
    offered: rate,
    sent: r.sent,
    sendRate: r.send_pps,
    valid: r.valid,
    repliesPerSecond: r.replies_per_s,
    ratio: r.ratio,
    kod: r.kod,
    invalid: r.invalid,
    sendErrors: r.send_errors,
    skipped: r.skipped,
    maxBehind: r.max_behind,
    generatorDrops: r.rx_drops,
    serverDrops: r.target_drops,
    serverCpu: cores.serverCpu,
    core0Busy: cores.core0Busy,
    core0Other: cores.core0Other,
    core0Steal: cores.core0Steal,
    core1Steal: cores.core1Steal,
    generatorShort: r.sent < KEPT_UP * rate * r.duration_s,
    contended: cores.contended,
  };
  return { step, nextSource: r.next_source };
}

export interface ServerRun {
  name: ServerName;
  command: string;
  error: string | null;
  steps: Step[];
}

async function runServer(name: ServerName, rates: number[], opts: Options): Promise<ServerRun> {
  const run: ServerRun = { name, command: "", error: null, steps: [] };
  const dir = mkdtempSync(join(os.tmpdir(), `ntpshield-bench-${name}-`));
  tempDirs.add(dir);
  let server: Running | undefined;
  try {
    const port = await freePort();
    run.command = pinned(SERVER_CPU, launchFor(name, port, dir).argv, opts.nice).join(" ");
    log(`${name}: starting (${run.command})`);
    server = await startServer(name, launchFor(name, port, dir), port, opts.nice);
    // Sources continue from step to step, so no address repeats within a server's whole ladder
    // (16.6M addresses; see ntpload.c).
    let source = 0;
    for (const rate of rates) {
      if (!server.alive)
        throw new BenchError(
          "ERR_BENCH_SERVER_DIED",
          `${name} exited (code ${server.exitCode}): ${server.output()}`,
        );
      let best: Step | undefined;
      for (let attempt = 0; attempt <= opts.retries; attempt++) {
        const { step, nextSource } = await measure(server, port, rate, opts, source);
        source = nextSource;
        log(
          `${name} ${fmt(rate).padStart(9)} offered: ${fmt(step.repliesPerSecond).padStart(9)} replies/s, ratio ` +
            `${step.ratio.toFixed(4)}, sent ${fmt(step.sendRate)}/s, server cpu ${pct(step.serverCpu)}, core ${SERVER_CPU} ` +
            `busy ${pct(step.core0Busy)} (others ${pct(step.core0Other)}, steal ${pct(step.core0Steal)}), core ${LOAD_CPU} ` +
            `steal ${pct(step.core1Steal)}, ` +
            `server-socket drops ${fmt(step.serverDrops)}${step.kod ? `, KoD ${fmt(step.kod)}` : ""}${flags(step)}` +
            (attempt > 0 ? ` (retry ${attempt})` : ""),
        );
        if (!best || step.ratio > best.ratio) best = step;
        // Only interference (or a generator that fell behind) is worth a retry: a server past its
        // capacity fails again the same way.
        if (step.ratio >= GOOD_RATIO || !(step.contended || step.generatorShort) || !server.alive) break;
      }
      if (best) run.steps.push(best);
    }
    if (!server.alive)
      throw new BenchError(
        "ERR_BENCH_SERVER_DIED",
        `${name} exited (code ${server.exitCode}): ${server.output()}`,
      );
  } catch (err) {
    run.error = (err as Error).message;
    log(`${name}: FAILED: ${run.error}`);
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
  return run;
}

// ---- report ----------------------------------------------------------------------------------------------

/** Markers: g = the generator sent less than offered; d = replies lost at the generator's socket;
 *  c = other processes or the hypervisor took core 0 during the step. */
function flags(s: Step): string {
  const f = `${s.generatorShort ? "g" : ""}${s.generatorDrops > 0 ? "d" : ""}${s.contended ? "c" : ""}`;
  return f ? ` ${f}` : "";
}

/** The highest offered rate answered at >= 99% that the generator actually offered in full. */
export function highestGood(steps: readonly Step[]): { rate: number | null; limitedAbove: boolean } {
  let rate: number | null = null;
  let limitedAbove = false;
  for (const s of steps) {
    if (s.ratio < GOOD_RATIO) continue;
    if (s.generatorShort) limitedAbove = true;
    else if (rate === null || s.offered > rate) rate = s.offered;
  }
  return {
    rate,
    limitedAbove: limitedAbove && steps.some((s) => s.generatorShort && s.offered > (rate ?? 0)),
  };
}

function peak(steps: readonly Step[]): number {
  return steps.reduce((m, s) => Math.max(m, s.repliesPerSecond), 0);
}

export function table(runs: readonly ServerRun[], rates: readonly number[]): string {
  const header = ["offered PPS"];
  for (const r of runs) header.push(`${r.name} replies/s`, `${r.name} ratio`);
  const chrony = runs.find((r) => r.name === "chrony");
  const shield = runs.find((r) => r.name === "ntpshield");
  const both = chrony !== undefined && shield !== undefined;
  if (both) header.push("ntpshield/chrony");
  const rows: string[][] = [];
  for (const [i, rate] of rates.entries()) {
    const row = [fmt(rate)];
    for (const r of runs) {
      const s = r.steps[i];
      if (s) row.push(`${fmt(s.repliesPerSecond)}${flags(s)}`, s.ratio.toFixed(4));
      else row.push(r.error ? "failed" : "-", "-");
    }
    if (both) {
      const a = chrony.steps[i];
      const b = shield.steps[i];
      row.push(a && b && a.repliesPerSecond > 0 ? (b.repliesPerSecond / a.repliesPerSecond).toFixed(2) : "-");
    }
    rows.push(row);
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((cell, c) => cell.padStart(widths[c] ?? 0)).join(" | ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)];

  const highest = runs.map((r) => {
    if (r.steps.length === 0) return `${r.name} failed`;
    const h = highestGood(r.steps);
    const text = h.rate === null ? "none" : fmt(h.rate);
    return `${r.name} ${text}${h.limitedAbove ? " (higher steps were limited by the generator)" : ""}`;
  });
  out.push("", `highest offered rate at >= 99%: ${highest.join(", ")}`);
  const peaks = runs.filter((r) => r.steps.length > 0).map((r) => `${r.name} ${fmt(peak(r.steps))}`);
  if (peaks.length > 0) {
    let text = `peak replies/s: ${peaks.join(", ")}`;
    if (both && peak(chrony.steps) > 0 && shield.steps.length > 0) {
      text += ` (ntpshield/chrony ${(peak(shield.steps) / peak(chrony.steps)).toFixed(2)})`;
    }
    out.push(text);
  }
  const all = runs.flatMap((r) => r.steps);
  if (all.some((s) => s.generatorShort)) {
    out.push(
      `g: the generator sent less than ${pct(KEPT_UP)} of the offered rate (its own limit, or its core was ` +
        "descheduled): the step does not count for the highest rate",
    );
  }
  if (all.some((s) => s.generatorDrops > 0)) {
    out.push("d: replies were dropped at the generator's own socket: the reply count is an undercount");
  }
  if (all.some((s) => s.contended)) {
    out.push(
      `c: other processes or the hypervisor (steal) took more than ${pct(CONTENDED)} of core ${SERVER_CPU}: ` +
        "rerun on a quiet machine",
    );
  }
  for (const r of runs) if (r.error) out.push(`${r.name} failed: ${r.error}`);
  return out.join("\n");
}

// ---- main ------------------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const opts = optionsOrExit("bench", argv, parseOptions, USAGE);
  if (typeof opts === "number") return opts;
  checkMachine();
  if (opts.nice && process.getuid?.() !== 0) {
    log("not root: running without nice -20 (other processes may then take turns on the measured cores)");
    opts.nice = false;
  }
  const machine = await prepareMachine(opts.nice, log, true);
  const runs: ServerRun[] = [];
  for (const name of opts.servers) runs.push(await runServer(name, opts.rates, opts));

  let calibration: ServerRun | null = null;
  if (opts.calibrate && !opts.servers.includes("reflector")) {
    const top = opts.rates[opts.rates.length - 1] ?? DEFAULT_RATES[DEFAULT_RATES.length - 1]!;
    calibration = await runServer("reflector", [top], opts);
  }
  const calibrationText = (() => {
    const s = calibration?.steps[0];
    if (!calibration) return null;
    if (!s) return `harness ceiling: calibration failed: ${calibration.error}`;
    return (
      `harness ceiling (ntpload against its trivial C responder, ${fmt(s.offered)} offered): sent ` +
      `${fmt(s.sendRate)}/s, ${fmt(s.repliesPerSecond)} replies/s, ratio ${s.ratio.toFixed(4)}`
    );
  })();

  if (opts.json) {
    const summary = Object.fromEntries(
      runs.map((r) => [
        r.name,
        { highest99: highestGood(r.steps), peakRepliesPerSecond: peak(r.steps), error: r.error },
      ]),
    );
    const doc = {
      machine,
      settings: {
        rates: opts.rates,
        durationSeconds: opts.duration,
        warmupSeconds: opts.warmup,
        serverCpu: SERVER_CPU,
        loadCpu: LOAD_CPU,
        retries: opts.retries,
        goodRatio: GOOD_RATIO,
        keptUp: KEPT_UP,
      },
      servers: runs,
      calibration,
      summary,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(
      `\nntpshield throughput benchmark: ${machine.cpus} x ${machine.model}; server on core ${SERVER_CPU}, ` +
        `generator on core ${LOAD_CPU}; ${opts.duration} s per step after ${opts.warmup} s warm-up\n\n`,
    );
    process.stdout.write(`${table(runs, opts.rates)}\n`);
    if (calibrationText) process.stdout.write(`${calibrationText}\n`);
  }
  return runs.some((r) => r.error) || calibration?.error ? 1 : 0;
}

function cleanUp(): void {
  killChildren();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await runBench("bench", main, { cleanUp });
}
