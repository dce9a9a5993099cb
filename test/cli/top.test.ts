// `ntpshield top` against a real server on loopback while real NTP traffic flows: in a pipe it prints one
// frame with non-zero rates and the talkers; in a terminal (a pseudo-terminal from util-linux's `script`)
// it redraws every interval and quits on q, giving the shell its screen back.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { sendFrom } from "../helpers/monitor.ts";
import {
  findTool,
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  REPO_ROOT,
  startNtpshield,
} from "../helpers/peers.ts";

after(killAllPeers);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv, feeding `input(write)` once its stdout shows `ready`; bounded by `timeoutMs`. */
function runCommand(
  argv: string[],
  options: { ready?: (out: string) => boolean; input?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let sent = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${argv.join(" ")} did not finish in time; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, options.timeoutMs ?? 15_000);
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!sent && options.input !== undefined && options.ready?.(stdout)) {
        sent = true;
        child.stdin.write(options.input);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("ntpshield top", () => {
  let server: Ntpshield;
  let port: number;
  let traffic: Promise<void> | undefined;
  let stopTraffic = false;

  before(async () => {
    port = await freeUdpPort();
    server = await startNtpshield({ listen: [`127.0.0.1:${port}`] });
  });
  after(async () => {
    stopTraffic = true;
    await traffic;
    await server?.stop();
  });

  /** Requests from 127.0.0.41 (every 20 ms) and 127.0.0.42 (every 100 ms) for at most 15 s. */
  function startTraffic(): void {
    stopTraffic = false;
    const loop = async (address: string, gapMs: number) => {
      const end = Date.now() + 15_000;
      while (!stopTraffic && Date.now() < end) await sendFrom(address, port, 5, { gapMs, waitMs: 0 });
    };
    traffic = Promise.all([loop("127.0.0.41", 20), loop("127.0.0.42", 100)]).then(() => {});
  }

  test("in a pipe: one frame with moving rates and the talkers, and a note on stderr", async () => {
    startTraffic();
    await sleep(300);
    const r = await runCommand([process.execPath, "src/cli/main.ts", "top", "--url", server.httpUrl!]);
    stopTraffic = true;
    await traffic;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not a terminal: printing one frame/);
    assert.ok(!r.stdout.includes("\x1b["), "no escape sequences in a pipe");
    const rates = /^packets\/s {2}received ([\d.]+) {2}served ([\d.]+) {2}gapped ([\d.]+)/m.exec(r.stdout);
    assert.ok(rates, r.stdout);
    assert.ok(Number(rates[1]) > 10, `received/s ${rates[1]}`);
    assert.ok(Number(rates[2]) > 0, `served/s ${rates[2]}`);
    assert.ok(Number(rates[3]) > 0, "127.0.0.41's 50 requests a second are gapped");
    const talkers = r.stdout.split("\n").filter((l) => /127\.0\.0\.4[12]$/.test(l));
    assert.equal(talkers[0]?.trim().split(/\s+/).at(-1), "127.0.0.41", "the biggest talker first");
    assert.equal(talkers.length, 2);
  });

  test("in a terminal: redraws each interval, q quits and restores the screen", async () => {
    const script = findTool("script");
    startTraffic();
    const command = [
      process.execPath,
      "src/cli/main.ts",
      "top",
      "--url",
      server.httpUrl!,
      "--interval",
      "0.3",
    ]
      .map((a) => `'${a}'`)
      .join(" ");
    const frames = (out: string) => out.split("\x1b[H").length - 1;
    const started = Date.now();
    const r = await runCommand([script, "-qfec", command, "/dev/null"], {
      ready: (out) => frames(out) >= 3 && out.includes("127.0.0.41"),
      input: "q",
      timeoutMs: 15_000,
    });
    stopTraffic = true;
    await traffic;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.ok(frames(r.stdout) >= 3, "redrawn at least three times");
    assert.ok(r.stdout.includes("\x1b[?1049h"), "alternate screen on");
    assert.ok(r.stdout.includes("\x1b[?1049l"), "and off again after q");
    assert.ok(r.stdout.includes("(q quits)"));
    assert.match(r.stdout, /received [1-9][\d.]*/, "a non-zero rate once two readings are in");
    assert.ok(Date.now() - started < 10_000);
  });
});
