// A real redis-server (Debian's, installed by scripts/install-peers.sh) as a test peer: the fleet's shared
// blocklist store. Started on a loopback address and a port of the test's own, without persistence, so a
// restart comes back empty as a Redis without a disk would; stop() and start() again keep the port. A
// missing redis-server fails the test (PeerError PEER_MISSING), never skips it.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findTool, PeerError } from "./peers.ts";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/** A TCP port free on `host` a moment ago. */
export async function freeTcpPort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(0, host, () => res());
  });
  const address = server.address();
  await new Promise<void>((res) => server.close(() => res()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function pingOnce(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      res(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once("error", () => done(false));
    s.connect(port, host, () => s.write("*1\r\n$4\r\nPING\r\n"));
    s.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}

export interface RedisPeer {
  host: string;
  port: number;
  /** redis://host:port */
  url: string;
  /** Starts it again (after stop()) on the same address and port; empty, as it has no disk. */
  start(): Promise<void>;
  /** SIGTERM; resolves once it is gone. */
  stop(): Promise<void>;
  output(): string;
  /** Stops it for good and removes its directory. */
  destroy(): Promise<void>;
}

/** Starts redis-server on `host` (a loopback address), a free port, no persistence. */
export async function startRedis(host = "127.0.50.1"): Promise<RedisPeer> {
  const binary = findTool("redis-server");
  const port = await freeTcpPort(host);
  const dir = await mkdtemp(join(tmpdir(), "ntpshield-redis-"));
  let child: ChildProcess | undefined;
  let out = "";
  const start = async () => {
    const c = spawn(
      binary,
      [
        "--bind",
        host,
        "--port",
        String(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        dir,
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = c;
    live.add(c);
    c.once("exit", () => live.delete(c));
    c.stdout?.setEncoding("utf8").on("data", (d: string) => (out += d));
    c.stderr?.setEncoding("utf8").on("data", (d: string) => (out += d));
    const deadline = Date.now() + 5000;
    for (;;) {
      if (c.exitCode !== null) throw new PeerError("PEER_FAILED", `redis-server exited (${c.exitCode})`, out);
      if (await pingOnce(host, port)) return;
      if (Date.now() > deadline)
        throw new PeerError("PEER_TIMEOUT", "redis-server did not answer PING in 5 s", out);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGTERM");
    const timer = setTimeout(() => c.kill("SIGKILL"), 3000);
    await gone;
    clearTimeout(timer);
  };
  await start();
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    start,
    stop: async () => {
      await stop();
    },
    output: () => out,
    destroy: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
