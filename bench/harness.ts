// What the socket benchmarks share (run.ts: servers side by side; native-echo.ts: the I/O alone): the
// generator (bench/ntpload.c) built and run pinned to its core, pinned and prioritised child processes, CPU
// accounting from /proc, free ports, rates as text. Linux only, like the benchmarks.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
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

/** argv prefixed to run on `cpu`, at nice -20 when asked (root). */
export function pinned(cpu: number, argv: string[], nice: boolean): string[] {
  return [...(nice ? ["nice", "-n", "-20"] : []), "taskset", "-c", String(cpu), ...argv];
}

/**
 * Starts a pinned process in a session of its own. With the scheduler's autogroups (Linux
 * kernel.sched_autogroup_enabled) a task's nice value only counts within its session, so another
 * session's busy process would take turns on the measured core whatever our nice; giving the process's
 * own group nice -20 (root only) puts it ahead of every other session.
 */
export function spawnPinned(cpu: number, argv: string[], nice: boolean): ChildProcess {
  const full = pinned(cpu, argv, nice);
  const child = spawn(full[0]!, full.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: nice,
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (nice && child.pid !== undefined) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, "-20");
    } catch {
      // No autogroups in this kernel: the nice value alone then counts.
    }
  }
  return child;
}

/**
 * Runs ntpload pinned to the generator's core with `args` and returns its one JSON line (the fields its
 * printf writes; each benchmark declares those it reads), or rejects with its output.
 */
export function runLoad<T>(args: string[], nice: boolean, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawnPinned(LOAD_CPU, [LOAD_BINARY, ...args], nice);
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
          new BenchError("ERR_BENCH_LOAD", `ntpload failed (exit ${code}): ${err.trim() || out.trim()}`),
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
