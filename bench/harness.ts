// What the socket benchmarks share (run.ts: servers side by side; overload.ts: the servers capped and
// flooded; native-echo.ts: the I/O alone): the generator (bench/ntpload.c) built and run pinned to its core,
// pinned and prioritised child processes, a CPU cap (a cgroup), CPU accounting from /proc, the servers
// under test (chronyd and ntpshield: how each is started and known to be ready), free ports, rates and
// figures as text. Linux only, like the benchmarks.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export class BenchError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "BenchError";
    this.code = code;
  }
}

export const ROOT = fileURLToPath(new URL("..", import.meta.url));
export const LOAD_SOURCE = join(ROOT, "bench", "ntpload.c");
export const LOAD_BINARY = join(ROOT, "bench", "build", "ntpload");
/** The measured server runs on core 0, the generator on core 1. */
export const SERVER_CPU = 0;
export const LOAD_CPU = 1;

/** Every child started here, killed by killChildren() (call it on exit and on signals). */
export const children = new Set<ChildProcess>();

export function killChildren(): void {
  for (const c of children) c.kill("SIGKILL");
}

/** A command's trimmed output, or null if it failed or is missing. */
export function tryRun(file: string, args: string[]): string | null {
  try {
    return execFileSync(file, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    return null;
  }
}

/** Builds bench/ntpload.c with cc into bench/build/ unless the binary is newer than the source. */
export function buildLoad(force = false): void {
  const fresh =
    !force && existsSync(LOAD_BINARY) && statSync(LOAD_BINARY).mtimeMs >= statSync(LOAD_SOURCE).mtimeMs;
  if (fresh) return;
  mkdirSync(join(ROOT, "bench", "build"), { recursive: true });
  try {
    execFileSync("cc", ["-O2", "-pthread", "-o", LOAD_BINARY, LOAD_SOURCE], {
      stdio: ["ignore", "inherit", "inherit"],
    });
  } catch (err) {
    throw new BenchError(
      "ERR_BENCH_BUILD",
      `cannot build bench/ntpload.c with cc: ${(err as Error).message}`,
    );
  }
}

/** The unit of /proc/stat and /proc/PID/stat times. */
export const CLOCK_TICKS = Number(tryRun("getconf", ["CLK_TCK"])) || 100;

/** utime + stime of a whole process (all its threads), in clock ticks. */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

/** /proc/stat fields of one core, in clock ticks. */
export interface CoreTicks {
  total: number;
  idle: number;
  /** user + nice + system: time that belongs to some process. */
  task: number;
  /** Time the hypervisor gave this virtual core to someone else. */
  steal: number;
}

export function coreTicks(cpu: number): CoreTicks {
  const line = readFileSync("/proc/stat", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`cpu${cpu} `));
  const f = (line ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return {
    total: user + nice + system + idle + iowait + irq + softirq + steal,
    idle: idle + iowait,
    task: user + nice + system,
    steal,
  };
}

/** A UDP port free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.bind(0, "127.0.0.1", () => resolve());
  });
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** argv prefixed to run on `cpu`, at nice -20 when asked (root), and inside `cgroup` when given. */
export function pinned(cpu: number, argv: string[], nice: boolean, cgroup?: CpuCgroup): string[] {
  const full = [...(nice ? ["nice", "-n", "-20"] : []), "taskset", "-c", String(cpu), ...argv];
  return cgroup ? cgroup.wrap(full) : full;
}

/**
 * Starts a pinned process in a session of its own. With the scheduler's autogroups (Linux
 * kernel.sched_autogroup_enabled) a task's nice value only counts within its session, so another
 * session's busy process would take turns on the measured core whatever our nice; giving the process's
 * own group nice -20 (root only) puts it ahead of every other session.
 */
export function spawnPinned(cpu: number, argv: string[], nice: boolean, cgroup?: CpuCgroup): ChildProcess {
  const full = pinned(cpu, argv, nice, cgroup);
  const child = spawn(full[0]!, full.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: nice,
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (nice && child.pid !== undefined && !cgroup) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, "-20");
    } catch {
      // No autogroups in this kernel: the nice value alone then counts.
    }
  }
  return child;
}

// ---- a CPU cap -------------------------------------------------------------------------------------------

/** Where a cgroup hierarchy is mounted, from /proc/self/mounts. */
function cgroupMounts(): Array<{ version: 1 | 2; path: string; options: string[] }> {
  const mounts: Array<{ version: 1 | 2; path: string; options: string[] }> = [];
  for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
    const [, path, type, options] = line.split(" ");
    if (!path || (type !== "cgroup" && type !== "cgroup2")) continue;
    mounts.push({ version: type === "cgroup" ? 1 : 2, path, options: (options ?? "").split(",") });
  }
  return mounts;
}

function readNumbers(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out.set(key, Number(value));
  }
  return out;
}

/** How often the cap held the group back, and for how long in all, since the group was made. */
export interface Throttling {
  periods: number;
  throttled: number;
  throttledSeconds: number;
}

/**
 * A cgroup with a CPU cap: `share` of one core in every `periodUs` (the v1 cpu controller's
 * cpu.cfs_quota_us over cpu.cfs_period_us, or v2's cpu.max), with the CPU time its processes used (v1
 * cpuacct.usage, v2 cpu.stat). Made by create(), joined by a process through wrap(), gone with remove()
 * (once its processes have exited). Root only.
 */
export class CpuCgroup {
  readonly version: 1 | 2;
  readonly share: number;
  readonly periodUs: number;
  /** The group's directories: one per v1 hierarchy it needs (cpu, cpuacct), or the one v2 directory. */
  readonly dirs: readonly string[];
  private readonly cpuDir: string;
  private readonly usageFile: string;

  private constructor(version: 1 | 2, share: number, periodUs: number, cpuDir: string, acctDir: string) {
    this.version = version;
    this.share = share;
    this.periodUs = periodUs;
    this.cpuDir = cpuDir;
    this.dirs = cpuDir === acctDir ? [cpuDir] : [cpuDir, acctDir];
    this.usageFile = version === 1 ? join(acctDir, "cpuacct.usage") : join(cpuDir, "cpu.stat");
  }

  /**
   * Makes the group `name` (a v1 cpu controller if one is mounted, else v2 with its cpu controller) capped
   * at `share` of a core; `favoured` gives it the weight of nice -20 against whatever else wants the core
   * (a process in a group of its own is outside the scheduler's autogroups, so its own nice value only
   * counts within the group).
   */
  static create(name: string, share: number, periodUs: number, favoured: boolean): CpuCgroup {
    const mounts = cgroupMounts();
    const v1cpu = mounts.find((m) => m.version === 1 && m.options.includes("cpu"));
    const v1acct = mounts.find((m) => m.version === 1 && m.options.includes("cpuacct"));
    const quotaUs = Math.max(1000, Math.round(share * periodUs));
    const fail = (why: string) =>
      new BenchError("ERR_BENCH_CGROUP", `cannot make the CPU cap's cgroup ${name}: ${why}`);
    try {
      if (v1cpu && v1acct) {
        const group = new CpuCgroup(1, share, periodUs, join(v1cpu.path, name), join(v1acct.path, name));
        for (const d of group.dirs) mkdirSync(d, { recursive: true });
        writeFileSync(join(group.cpuDir, "cpu.cfs_period_us"), String(periodUs));
        writeFileSync(join(group.cpuDir, "cpu.cfs_quota_us"), String(quotaUs));
        // The weight of a nice -20 task (the kernel's sched_prio_to_weight[0]).
        if (favoured) writeFileSync(join(group.cpuDir, "cpu.shares"), "88761");
        return group;
      }
      const v2 = mounts.find(
        (m) =>
          m.version === 2 &&
          existsSync(join(m.path, "cgroup.controllers")) &&
          readFileSync(join(m.path, "cgroup.controllers"), "utf8").split(/\s+/).includes("cpu"),
      );
      if (!v2)
        throw fail("no cgroup v1 cpu and cpuacct controllers, nor a cgroup v2 with its cpu controller");
      const subtree = join(v2.path, "cgroup.subtree_control");
      if (!readFileSync(subtree, "utf8").split(/\s+/).includes("cpu")) writeFileSync(subtree, "+cpu");
      const dir = join(v2.path, name);
      const group = new CpuCgroup(2, share, periodUs, dir, dir);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "cpu.max"), `${quotaUs} ${periodUs}`);
      if (favoured) writeFileSync(join(dir, "cpu.weight"), "10000");
      return group;
    } catch (err) {
      if (err instanceof BenchError) throw err;
      throw fail((err as Error).message);
    }
  }

  /** argv that joins the group, then execs `argv` (same process: the group holds it from its first instruction). */
  wrap(argv: string[]): string[] {
    const joins = this.dirs.map((d) => `echo $$ > '${join(d, "cgroup.procs")}'`).join(" && ");
    return ["sh", "-c", `${joins} && exec "$@"`, "sh", ...argv];
  }

  /** CPU time used by the group's processes since it was made, in seconds. */
  usageSeconds(): number {
    if (this.version === 1) return Number(readFileSync(this.usageFile, "utf8")) / 1e9;
    return (readNumbers(this.usageFile).get("usage_usec") ?? Number.NaN) / 1e6;
  }

  throttling(): Throttling {
    const stat = readNumbers(join(this.cpuDir, "cpu.stat"));
    return {
      periods: stat.get("nr_periods") ?? 0,
      throttled: stat.get("nr_throttled") ?? 0,
      throttledSeconds:
        this.version === 1
          ? (stat.get("throttled_time") ?? 0) / 1e9
          : (stat.get("throttled_usec") ?? 0) / 1e6,
    };
  }

  /** Removes the group; its processes must have exited (a killed one can take a moment: retried for 2 s). */
  remove(): void {
    const deadline = Date.now() + 2000;
    for (const d of this.dirs) {
      for (;;) {
        try {
          if (existsSync(d)) rmdirSync(d);
          break;
        } catch (err) {
          if (Date.now() > deadline) {
            process.stderr.write(`cannot remove the cgroup ${d}: ${(err as Error).message}\n`);
            break;
          }
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        }
      }
    }
  }
}

/** One line of bench/ntpload output, the fields of its printf that run.ts and overload.ts read. */
export interface LoadResult {
  offered_pps: number;
  duration_s: number;
  sent: number;
  send_pps: number;
  received: number;
  valid: number;
  kod: number;
  invalid: number;
  duplicate: number;
  replies_per_s: number;
  ratio: number;
  send_errors: number;
  send_error: string | null;
  warmup_sent: number;
  warmup_valid: number;
  sources: number;
  next_source: number;
  source_interval_s: number;
  rx_drops: number;
  target_drops: number;
  skipped: number;
  max_behind: number;
}

/** A step answers "at >= 99%" when at least this share of the requests got a valid reply. */
export const GOOD_RATIO = 0.99;
/** The generator "kept up" when it sent at least this share of the offered packets: on a virtual machine
 *  it loses a percent or two to its core being descheduled now and then (ntpload.c skips rather than
 *  bursts to catch up). */
export const KEPT_UP = 0.97;
/** Share of core 0 taken by other processes or by the hypervisor above which a step is flagged. */
export const CONTENDED = 0.1;

/**
 * Runs ntpload pinned to the generator's core with `args` and returns its one JSON line (the fields its
 * printf writes; each benchmark declares those it reads), or rejects with its output.
 */
export function runLoad<T>(args: string[], nice: boolean, timeoutMs: number): Promise<T> {
  return runGenerator<T>("ntpload", [LOAD_BINARY, ...args], nice, timeoutMs);
}

/**
 * Runs a load generator (`argv`, called `name` in errors) pinned to the generator's core, killed after
 * `timeoutMs`, and returns its last line parsed as JSON, or rejects with its output.
 */
export function runGenerator<T>(name: string, argv: string[], nice: boolean, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawnPinned(LOAD_CPU, argv, nice);
    let out = "";
    let err = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString("utf8");
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        reject(
          new BenchError("ERR_BENCH_LOAD", `${name} failed (exit ${code}): ${err.trim() || out.trim()}`),
        );
        return;
      }
      resolve(JSON.parse(line) as T);
    });
  });
}

/** "50000", "50k", "1.5M" -> packets per second (1..5M). */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text.trim());
  if (!m)
    throw new BenchError("ERR_BENCH_OPTION", `--rates: "${text}" is not a rate (e.g. 50000, 50k, 1.5M)`);
  const unit = m[2]?.toLowerCase();
  const rate = Math.round(Number(m[1]) * (unit === "k" ? 1e3 : unit === "m" ? 1e6 : 1));
  if (rate < 1 || rate > 5_000_000) {
    throw new BenchError("ERR_BENCH_OPTION", `--rates: ${text} is outside 1..5M packets per second`);
  }
  return rate;
}

/**
 * Runs a benchmark's main: its children (pinned servers run in sessions of their own, so nothing else stops
 * them) go with it however it ends, an error is printed with its code, and the exit status is main's.
 * `handleSignals` false leaves SIGINT/SIGTERM to their default (a serving child must die at once, even
 * when its loop never returns to the event loop).
 */
export async function runBench(
  name: string,
  main: (argv: string[]) => Promise<number>,
  options: { cleanUp?: () => void; handleSignals?: boolean } = {},
): Promise<void> {
  const cleanUp = options.cleanUp ?? killChildren;
  if (options.handleSignals ?? true) {
    process.once("exit", cleanUp);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        killChildren();
        process.exit(130);
      });
    }
  }
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    killChildren();
    const e = err as Error & { code?: string };
    process.stderr.write(`${name}: ${e.code ? `${e.code}: ` : ""}${e.message}\n`);
    process.exitCode = 1;
  }
}

// ---- figures as text -------------------------------------------------------------------------------------

export function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

export function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** 150000 -> "150k", 1500000 -> "1.5M" (rates in usage texts and labels). */
export function short(rate: number): string {
  if (rate % 1_000_000 === 0) return `${rate / 1_000_000}M`;
  if (rate % 1000 === 0) return `${rate / 1000}k`;
  return String(rate);
}

/** A numeric option in [min, max], or a BenchError naming it. */
export function parseNumber(name: string, text: string, min: number, max: number, unit = "a number"): number {
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v) || v < min || v > max) {
    throw new BenchError("ERR_BENCH_OPTION", `${name} must be ${unit} in [${min}, ${max}], got "${text}"`);
  }
  return v;
}

// ---- where the time of the two cores went -----------------------------------------------------------------

/** Shares of one core over a window (wall-clock seconds), from /proc/stat and /proc/PID/stat. */
export interface CoreShares {
  seconds: number;
  /** CPU time of the server process, as a share of one core. */
  serverCpu: number;
  /** Share of core 0 busy; the share used by processes other than the server; the share stolen by the
   *  hypervisor (a virtual machine's core that is not running while the generator's core keeps sending). */
  core0Busy: number;
  core0Other: number;
  core0Steal: number;
  /** The same for the generator's core: a stolen generator falls behind and skips. */
  core1Steal: number;
  /** Other processes or the hypervisor took more than CONTENDED of core 0. */
  contended: boolean;
}

/** Snapshots at start(); end() gives the shares since. The denominator is wall-clock time: a virtual
 *  machine's per-core tick totals do not always add up. */
export class CoreWatch {
  private readonly pid: number;
  private readonly start = performance.now();
  private readonly proc0: number;
  private readonly server0 = coreTicks(SERVER_CPU);
  private readonly load0 = coreTicks(LOAD_CPU);

  constructor(serverPid: number) {
    this.pid = serverPid;
    this.proc0 = processTicks(serverPid);
  }

  end(): CoreShares {
    const server1 = coreTicks(SERVER_CPU);
    const load1 = coreTicks(LOAD_CPU);
    const proc1 = processTicks(this.pid);
    const seconds = (performance.now() - this.start) / 1000;
    const ticks = Math.max(1, seconds * CLOCK_TICKS);
    const serverTicks = proc1 - this.proc0;
    const other = Math.max(0, server1.task - this.server0.task - serverTicks) / ticks;
    const steal = (server1.steal - this.server0.steal) / ticks;
    return {
      seconds,
      serverCpu: serverTicks / ticks,
      core0Busy: Math.min(
        1,
        (server1.total - server1.idle - (this.server0.total - this.server0.idle)) / ticks,
      ),
      core0Other: other,
      core0Steal: steal,
      core1Steal: (load1.steal - this.load0.steal) / ticks,
      contended: other + steal > CONTENDED,
    };
  }
}

/** VmRSS of a process, in bytes (NaN once it has gone). */
export function processRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

// ---- the machine -----------------------------------------------------------------------------------------

export function findChronyd(): string | null {
  for (const dir of [...(process.env["PATH"] ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    if (dir && existsSync(join(dir, "chronyd"))) return join(dir, "chronyd");
  }
  return null;
}

export function describeMachine(nice: boolean) {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model ?? "unknown",
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    chrony: tryRun(findChronyd() ?? "chronyd", ["--version"])?.split("\n")[0] ?? null,
    compiler: tryRun("cc", ["--version"])?.split("\n")[0] ?? null,
    priority: nice ? "nice -20, own session with autogroup nice -20" : "default",
    loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** How busy both cores are before anything of ours runs: a benchmark wants a quiet machine. */
export async function busyBefore(): Promise<number[]> {
  const cores = [SERVER_CPU, LOAD_CPU];
  const a = cores.map(coreTicks);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return cores.map((c, i) => {
    const b = coreTicks(c);
    const before = a[i]!;
    const total = Math.max(1, b.total - before.total);
    return Math.round((1 - (b.idle - before.idle) / total) * 100) / 100;
  });
}

/**
 * A benchmark's options from its arguments: the options, or the exit code when there is nothing to run (0
 * after printing the usage for --help, 2 after naming a bad option). `parse` returns null for --help.
 */
export function optionsOrExit<T>(
  name: string,
  argv: string[],
  parse: (argv: string[]) => T | null,
  usage: string,
): T | number {
  let opts: T | null;
  try {
    opts = parse(argv);
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n${usage}\n`);
    return 2;
  }
  if (!opts) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return opts;
}

/**
 * What every socket benchmark does before its first server: this script's threads moved off the server's
 * core, the generator built, the machine described (with how busy both cores were for a second) and a
 * warning logged when it is not quiet.
 */
export async function prepareMachine(nice: boolean, log: (line: string) => void, rebuildLoad = false) {
  tryRun("taskset", ["-a", "-p", "-c", String(LOAD_CPU), String(process.pid)]);
  buildLoad(rebuildLoad);
  const machine = { ...describeMachine(nice), busyBefore: await busyBefore() };
  log(
    `${machine.cpus} x ${machine.model}, ${machine.kernel}, load average ${machine.loadavg.join(" ")}, ` +
      `busy before start: core ${SERVER_CPU} ${pct(machine.busyBefore[0] ?? 0)}, core ${LOAD_CPU} ${pct(machine.busyBefore[1] ?? 0)}`,
  );
  if (machine.busyBefore.some((b) => b > 0.05)) log("WARNING: the machine is not quiet; figures may be low");
  return machine;
}

/** The checks every socket benchmark makes first: Linux, two cores, taskset. */
export function checkMachine(): void {
  if (process.platform !== "linux")
    throw new BenchError("ERR_BENCH_PLATFORM", "the benchmark needs Linux (taskset, /proc)");
  if (os.cpus().length < 2)
    throw new BenchError("ERR_BENCH_CORES", "the benchmark needs two cores: server and generator");
  if (!tryRun("taskset", ["-V"]))
    throw new BenchError("ERR_BENCH_TASKSET", "taskset (util-linux) is missing");
}

// ---- the servers under test ------------------------------------------------------------------------------

export interface Launch {
  argv: string[];
  /** A line on stdout that says the server is ready, before probing. */
  readyLine?: string;
}

/**
 * chronyd serving on 127.0.0.1:`port` (and ::1) from a configuration written into `dir`: a local clock at
 * stratum 10, every client allowed, no clock control (-x), no command sockets; `extra` lines are added as
 * they are (each benchmark says which directives it adds, and why).
 */
export function chronyLaunch(port: number, dir: string, extra: readonly string[] = []): Launch {
  const chronyd = findChronyd();
  if (!chronyd) {
    throw new BenchError("ERR_BENCH_NO_CHRONY", "chronyd not found (scripts/install-peers.sh installs it)");
  }
  const conf = join(dir, "chrony.conf");
  writeFileSync(
    conf,
    [
      `port ${port}`,
      "bindaddress 127.0.0.1",
      "bindaddress ::1",
      "local stratum 10",
      "allow",
      ...extra,
      "cmdport 0",
      "bindcmdaddress /",
      `pidfile ${join(dir, "chronyd.pid")}`,
      `driftfile ${join(dir, "chrony.drift")}`,
      "",
    ].join("\n"),
  );
  return { argv: [chronyd, "-d", "-x", "-f", conf] };
}

/** Every defence off: no MRU record (nomrulist), hence nothing to gap; call-gap and KoD off as well. */
export const BARE_CONFIG =
  '[acl]\ndefault = ["nomrulist"]\n[callgap]\nenabled = false\n[kod]\nenabled = false\n';

/**
 * ntpshield serving on 127.0.0.1:`port` with one worker thread: its defaults, or `config` (TOML text,
 * written into `dir`), or the file `configFile`; `extra` flags are appended.
 */
export function ntpshieldLaunch(
  port: number,
  dir: string,
  options: { config?: string; configFile?: string; extra?: readonly string[] } = {},
): Launch {
  const main = join(ROOT, "src", "cli", "main.ts");
  if (!existsSync(main)) throw new BenchError("ERR_BENCH_NO_NTPSHIELD", "src/cli/main.ts does not exist");
  // --http off unless asked for: the monitoring endpoint is not measured, and its default port may be taken.
  const http = options.extra?.includes("--http") ? [] : ["--http", "off"];
  const argv = [process.execPath, main, "serve", "--listen", `127.0.0.1:${port}`, "--threads", "1", ...http];
  if (options.config !== undefined) {
    const conf = join(dir, "ntpshield.toml");
    writeFileSync(conf, options.config);
    argv.push("--config", conf);
  } else if (options.configFile !== undefined) {
    argv.push("--config", options.configFile);
  }
  argv.push(...(options.extra ?? []));
  return { argv, readyLine: '"msg":"listening"' };
}

/** A server child process: its output drained and kept (the last 8 KiB), its exit awaited. */
export class Running {
  readonly child: ChildProcess;
  private tail = "";
  private lineWaiters: Array<{ text: string; resolve: () => void }> = [];
  exitCode: number | null | undefined = undefined;
  readonly exited: Promise<void>;

  constructor(cpu: number, argv: string[], nice: boolean, cgroup?: CpuCgroup) {
    this.child = spawnPinned(cpu, argv, nice, cgroup);
    // Always drain the output: a server blocked on a full pipe would measure the pipe.
    const take = (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString("utf8")).slice(-8192);
      this.lineWaiters = this.lineWaiters.filter((w) => {
        if (!this.tail.includes(w.text)) return true;
        w.resolve();
        return false;
      });
    };
    this.child.stdout?.on("data", take);
    this.child.stderr?.on("data", take);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        children.delete(this.child);
        resolve();
      });
      this.child.once("error", (err) => {
        this.tail += `\n${err.message}`;
        this.exitCode = -1;
        children.delete(this.child);
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  output(): string {
    return this.tail.trim().split("\n").slice(-6).join("\n");
  }

  waitForLine(text: string, timeoutMs: number): Promise<boolean> {
    if (this.tail.includes(text)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.lineWaiters.push({
        text,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        resolve(this.tail.includes(text));
      });
    });
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill("SIGTERM");
    const killer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * Sends NTP requests until a mode-4 reply with a usable stratum echoes one (RFC 5905 §8); false after
 * the timeout or as soon as `gone` settles (the server exited).
 */
export async function probe(port: number, timeoutMs: number, gone: Promise<void>): Promise<boolean> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  const request = Buffer.alloc(48);
  request[0] = 0x23; // version 4, mode 3
  const tx = Buffer.from(Array.from({ length: 8 }, () => Math.floor(Math.random() * 256)));
  tx.copy(request, 40);
  let deadline: NodeJS.Timeout | undefined;
  let again: NodeJS.Timeout | undefined;
  try {
    return await new Promise<boolean>((resolve) => {
      deadline = setTimeout(() => resolve(false), timeoutMs);
      void gone.then(() => resolve(false));
      s.on("message", (msg) => {
        const stratum = msg[1] ?? 0;
        const mode = (msg[0] ?? 0) & 7;
        if (
          msg.length >= 48 &&
          mode === 4 &&
          stratum >= 1 &&
          stratum <= 15 &&
          msg.subarray(24, 32).equals(tx)
        ) {
          resolve(true);
        }
      });
      const send = () => s.send(request, port, "127.0.0.1");
      again = setInterval(send, 200);
      send();
    });
  } finally {
    clearTimeout(deadline);
    clearInterval(again);
    s.close();
  }
}

/**
 * Starts `launch` pinned to the server's core (inside `cgroup` when given) and resolves once it logged its
 * ready line and answered an NTP request on `port`; otherwise stops it and rejects with its last output.
 */
export async function startServer(
  name: string,
  launch: Launch,
  port: number,
  nice: boolean,
  cgroup?: CpuCgroup,
): Promise<Running> {
  const server = new Running(SERVER_CPU, launch.argv, nice, cgroup);
  const fail = async (why: string) => {
    await server.stop();
    const out = server.output();
    return new BenchError(
      "ERR_BENCH_SERVER_START",
      `${name} ${why}${out ? `; its last output:\n${out}` : ""}`,
    );
  };
  if (launch.readyLine && !(await server.waitForLine(launch.readyLine, 30_000))) {
    throw await fail(
      server.alive ? `did not log ${launch.readyLine} within 30 s` : `exited (code ${server.exitCode})`,
    );
  }
  if (!(await probe(port, 10_000, server.exited))) {
    throw await fail(
      server.alive ? "did not answer an NTP request within 10 s" : `exited (code ${server.exitCode})`,
    );
  }
  return server;
}
