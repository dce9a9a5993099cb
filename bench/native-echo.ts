// The ceiling of the Node side with the batched UDP addon: a minimal NTP answering loop in JavaScript
// (receive, turn each 48-byte request into a reply in place, send) run over native/udpio.c and, for
// comparison, the same loop over node:dgram. No clock reading, no defences, no state: what is left is the
// cost of getting datagrams in and out of JavaScript, the part the addon replaces.
//
//   npx node bench/native-echo.ts [--rates 50k,100k,...] [--duration S] [--warmup S] [--modes native,dgram]
//                                 [--batch N] [--rcvbuf BYTES] [--no-calibrate] [--no-nice] [--json]
//
// As bench/run.ts (whose method docs/benchmarks.md describes): each server runs pinned to core 0 and
// answers a ladder of offered rates from bench/ntpload.c pinned to core 1, every request from a new
// 127/8 source; as root both run at nice -20 in sessions of their own. Prints replies per second and reply
// ratio per rate for each loop, and native/dgram. A last step runs ntpload's own C responder at the top
// rate (the harness ceiling). Keep steps short on a shared machine: the figures are only as quiet as the
// two cores are.

import type { ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildNative } from "../scripts/build-native.ts";
import { tryLoadNativeUdp } from "../src/server/native-udp.ts";
import {
  BenchError,
  buildLoad,
  CLOCK_TICKS,
  coreTicks,
  fmt,
  freePort,
  LOAD_BINARY,
  LOAD_CPU,
  parseRate,
  pct,
  processTicks,
  runBench,
  runLoad,
  SERVER_CPU,
  spawnPinned,
  tryRun,
} from "./harness.ts";

const SELF = fileURLToPath(import.meta.url);
/** A server child exits by itself after this long, whatever happens to its parent. */
const SERVER_MAX_SECONDS = 600;
const NTP_LENGTH = 48;

type Mode = "native" | "dgram" | "reflector";
const MODES: readonly Mode[] = ["native", "dgram", "reflector"];

function log(line: string): void {
  process.stderr.write(`native-echo: ${line}\n`);
}

function number(name: string, text: string, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new BenchError("ERR_BENCH_OPTION", `${name} must be in [${min}, ${max}], got "${text}"`);
  }
  return v;
}

// ---- the servers (child processes) -----------------------------------------------------------------------

/** Turns the request in bytes[o, o+48) into a reply: mode 4, stratum 1, origin = the client's transmit. */
function answerInPlace(bytes: Uint8Array, o: number): void {
  bytes[o] = (bytes[o]! & 0x38) | 4;
  bytes[o + 1] = 1;
  bytes.copyWithin(o + 24, o + 40, o + 48);
}

function serveNative(port: number, batch: number, rcvbuf: number): void {
  const r = tryLoadNativeUdp();
  if (!r.ok) throw new BenchError("ERR_BENCH_NO_ADDON", r.reason);
  const s = r.udp.open("127.0.0.1", port, 4, { batch, recvBufferBytes: rcvbuf });
  const { data, lengths, replyLengths, slotBytes } = s;
  process.stdout.write(`ready native batch ${s.batch} rcvbuf ${s.recvBufferBytes}\n`);
  const deadline = Date.now() + SERVER_MAX_SECONDS * 1000;
  while (Date.now() < deadline) {
    const n = s.recv(100);
    if (n === 0) continue;
    for (let i = 0; i < n; i++) {
      const o = i * slotBytes;
      if (lengths[i]! >= NTP_LENGTH && (data[o]! & 7) === 3) {
        answerInPlace(data, o);
        replyLengths[i] = NTP_LENGTH;
      }
    }
    s.send(n);
  }
  s.close();
}

function serveDgram(port: number, rcvbuf: number): void {
  const socket = dgram.createSocket({ type: "udp4", ...(rcvbuf > 0 ? { recvBufferSize: rcvbuf } : {}) });
  socket.on("message", (msg, rinfo) => {
    if (msg.length >= NTP_LENGTH && (msg[0]! & 7) === 3) {
      answerInPlace(msg, 0);
      socket.send(msg, 0, NTP_LENGTH, rinfo.port, rinfo.address);
    }
  });
  socket.on("error", () => undefined); // as the server: count nothing, never stop
  socket.bind(port, "127.0.0.1", () => {
    process.stdout.write(`ready dgram rcvbuf ${socket.getRecvBufferSize()}\n`);
  });
  setTimeout(() => process.exit(0), SERVER_MAX_SECONDS * 1000).unref();
  // Keep the process alive on the socket alone; the timer above only bounds it.
}

// ---- the harness (parent) --------------------------------------------------------------------------------

interface Server {
  child: ChildProcess;
  banner: string;
}

async function startServer(mode: Mode, port: number, opts: Options): Promise<Server> {
  const argv =
    mode === "reflector"
      ? [LOAD_BINARY, "--reflect", String(port), "--duration", String(SERVER_MAX_SECONDS)]
      : [
          process.execPath,
          SELF,
          "--serve",
          mode,
          "--port",
          String(port),
          "--batch",
          String(opts.batch),
          "--rcvbuf",
          String(opts.rcvbuf),
        ];
  const child = spawnPinned(SERVER_CPU, argv, opts.nice);
  let out = "";
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new BenchError("ERR_BENCH_START", `${mode}: no ready line: ${out}`)),
      20_000,
    );
    const take = (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const line = out.split("\n").find((l) => l.startsWith("ready") || l.includes('"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    };
    child.stdout?.on("data", take);
    child.stderr?.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new BenchError("ERR_BENCH_START", `${mode} exited (code ${code}): ${out.trim()}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return { child, banner };
}

async function stopServer(s: Server): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => s.child.once("exit", () => resolve()));
  s.child.kill("SIGTERM"); // the native loop is in C or JavaScript, never in a handler: SIGTERM ends it
  const killer = setTimeout(() => s.child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(killer);
}

interface LoadResult {
  sent: number;
  send_pps: number;
  valid: number;
  replies_per_s: number;
  ratio: number;
  duration_s: number;
  next_source: number;
  target_drops: number;
  rx_drops: number;
}

interface Step {
  mode: Mode;
  offered: number;
  sendRate: number;
  repliesPerSecond: number;
  ratio: number;
  serverCpu: number;
  serverDrops: number;
  steal0: number;
}

interface Options {
  rates: number[];
  duration: number;
  warmup: number;
  modes: Mode[];
  batch: number;
  rcvbuf: number;
  calibrate: boolean;
  nice: boolean;
  json: boolean;
}

async function runMode(mode: Mode, rates: number[], opts: Options): Promise<Step[]> {
  const port = await freePort();
  const server = await startServer(mode, port, opts);
  log(`${mode}: ${server.banner}`);
  const steps: Step[] = [];
  let source = mode === "native" ? 0 : mode === "dgram" ? 5_000_000 : 10_000_000;
  try {
    for (const rate of rates) {
      const pid = server.child.pid ?? -1;
      const t0 = performance.now();
      const cpu0 = processTicks(pid);
      const steal0 = coreTicks(SERVER_CPU).steal;
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
          String(source),
        ],
        opts.nice,
        (opts.duration + opts.warmup + 15) * 1000,
      );
      source = r.next_source;
      const ticks = Math.max(1, ((performance.now() - t0) / 1000) * CLOCK_TICKS);
      const step: Step = {
        mode,
        offered: rate,
        sendRate: r.send_pps,
        repliesPerSecond: r.replies_per_s,
        ratio: r.ratio,
        serverCpu: (processTicks(pid) - cpu0) / ticks,
        serverDrops: r.target_drops,
        steal0: (coreTicks(SERVER_CPU).steal - steal0) / ticks,
      };
      steps.push(step);
      log(
        `${mode.padEnd(9)} ${fmt(rate).padStart(9)} offered: ${fmt(step.repliesPerSecond).padStart(9)} replies/s, ` +
          `ratio ${step.ratio.toFixed(4)}, sent ${fmt(step.sendRate)}/s, server cpu ${pct(step.serverCpu)}, ` +
          `server-socket drops ${fmt(step.serverDrops)}, core ${SERVER_CPU} steal ${pct(step.steal0)}`,
      );
    }
  } finally {
    await stopServer(server);
  }
  return steps;
}

function table(rates: number[], byMode: Map<Mode, Step[]>): string {
  const modes = [...byMode.keys()].filter((m) => m !== "reflector");
  const header = ["offered PPS"];
  for (const m of modes) header.push(`${m} replies/s`, `${m} ratio`, `${m} cpu`);
  const both = modes.includes("native") && modes.includes("dgram");
  if (both) header.push("native/dgram");
  const rows = rates.map((rate, i) => {
    const row = [fmt(rate)];
    for (const m of modes) {
      const s = byMode.get(m)?.[i];
      row.push(s ? fmt(s.repliesPerSecond) : "-", s ? s.ratio.toFixed(4) : "-", s ? pct(s.serverCpu) : "-");
    }
    if (both) {
      const a = byMode.get("native")?.[i];
      const b = byMode.get("dgram")?.[i];
      row.push(a && b && b.repliesPerSecond > 0 ? (a.repliesPerSecond / b.repliesPerSecond).toFixed(2) : "-");
    }
    return row;
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]?.length ?? 0)));
  const line = (cells: string[]) => cells.map((c, k) => c.padStart(widths[k] ?? 0)).join(" | ");
  const out = [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)];
  for (const m of modes) {
    const steps = byMode.get(m) ?? [];
    const good = steps.filter((s) => s.ratio >= 0.99).map((s) => s.offered);
    const peak = steps.reduce((p, s) => Math.max(p, s.repliesPerSecond), 0);
    out.push(
      `${m}: highest offered rate at >= 99%: ${good.length ? fmt(Math.max(...good)) : "none"}; peak ${fmt(peak)} replies/s`,
    );
  }
  const ceiling = byMode.get("reflector")?.[0];
  if (ceiling) {
    out.push(
      `harness ceiling (ntpload's C responder, ${fmt(ceiling.offered)} offered): ${fmt(ceiling.repliesPerSecond)} ` +
        `replies/s, ratio ${ceiling.ratio.toFixed(4)}`,
    );
  }
  return out.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      serve: { type: "string" },
      port: { type: "string" },
      rates: { type: "string", default: "50k,100k,150k,200k,250k,300k" },
      duration: { type: "string", default: "3" },
      warmup: { type: "string", default: "1" },
      modes: { type: "string", default: "native,dgram" },
      batch: { type: "string", default: "64" },
      rcvbuf: { type: "string", default: "0" },
      calibrate: { type: "boolean", default: true },
      nice: { type: "boolean", default: true },
      json: { type: "boolean", default: false },
    },
    allowNegative: true,
    strict: true,
  });
  const batch = Math.round(number("--batch", values.batch, 1, 1024));
  const rcvbuf = Math.round(number("--rcvbuf", values.rcvbuf, 0, 1 << 30));
  if (values.serve !== undefined) {
    const port = Math.round(number("--port", values.port ?? "", 1, 65535));
    if (values.serve === "native") serveNative(port, batch, rcvbuf);
    else if (values.serve === "dgram") serveDgram(port, rcvbuf);
    else throw new BenchError("ERR_BENCH_OPTION", `--serve native|dgram, not ${values.serve}`);
    return 0;
  }
  if (process.platform !== "linux" || os.cpus().length < 2 || !tryRun("taskset", ["-V"])) {
    throw new BenchError("ERR_BENCH_MACHINE", "needs Linux, two cores and taskset");
  }
  const modes = values.modes.split(",").map((m) => m.trim()) as Mode[];
  for (const m of modes) {
    if (!MODES.includes(m)) throw new BenchError("ERR_BENCH_OPTION", `--modes: unknown "${m}"`);
  }
  const opts: Options = {
    rates: [...new Set(values.rates.split(",").map(parseRate))].sort((a, b) => a - b),
    duration: number("--duration", values.duration, 0.5, 60),
    warmup: number("--warmup", values.warmup, 0, 10),
    modes,
    batch,
    rcvbuf,
    calibrate: values.calibrate,
    nice: values.nice && process.getuid?.() === 0,
    json: values.json,
  };
  tryRun("taskset", ["-a", "-p", "-c", String(LOAD_CPU), String(process.pid)]);
  buildLoad();
  if (modes.includes("native")) {
    buildNative();
    const r = tryLoadNativeUdp();
    if (!r.ok) throw new BenchError("ERR_BENCH_NO_ADDON", r.reason);
  }
  log(
    `${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const byMode = new Map<Mode, Step[]>();
  for (const m of modes)
    byMode.set(m, await runMode(m, m === "reflector" ? opts.rates.slice(-1) : opts.rates, opts));
  if (opts.calibrate && !modes.includes("reflector")) {
    byMode.set("reflector", await runMode("reflector", opts.rates.slice(-1), opts));
  }
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ options: opts, steps: Object.fromEntries(byMode) }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(
      `\nnative-echo: JS answering loop, addon vs node:dgram; server on core ${SERVER_CPU}, ntpload on core ` +
        `${LOAD_CPU}; ${opts.duration} s per step after ${opts.warmup} s warm-up, batch ${opts.batch}\n\n`,
    );
    process.stdout.write(`${table(opts.rates, byMode)}\n`);
  }
  return 0;
}

if (process.argv[1] === SELF) {
  // Only the harness handles signals: a serving child must die on the parent's SIGTERM even while its
  // loop never returns to the event loop (a JavaScript handler would never run).
  await runBench("native-echo", main, { handleSignals: !process.argv.includes("--serve") });
}
