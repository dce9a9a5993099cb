// A fleet behind real nginx (Debian's, with libnginx-mod-stream; scripts/install-peers.sh), configured by
// the shipped deploy/nginx-ntp.conf with only its addresses changed: UDP balanced by `hash $remote_addr
// consistent` with the client's address kept (`proxy_bind $remote_addr transparent`). On loopback, where
// 127/8 is all local, the servers' replies to the client's address come back to nginx's transparent
// socket with no policy routing (docs/fleet.md says what a real deployment adds).
//
// Shown (paper §12): each client lands on one server always, and that server's MRU list holds the real
// client address; a burster asking every second is gapped by the one server it meets, while the same
// nginx with round robin (the hash line taken out) spreads it over three servers that each see it every
// 3 s, and lets it through.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ntpRequest } from "../helpers/monitor.ts";
import {
  findTool,
  freeUdpPort,
  killAllPeers,
  type Ntpshield,
  PeerError,
  REPO_ROOT,
  startNtpshield,
} from "../helpers/peers.ts";

const NGINX_HOST = "127.0.50.40";
const BACKEND_HOSTS = ["127.0.50.41", "127.0.50.42", "127.0.50.43"];
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const dir = mkdtempSync(join(tmpdir(), "ntpshield-nginx-"));

// The servers' call-gap, strict and simple for the count below: Rule 1 at 2 s with no tolerance, Rule 2 at
// 2.5 s, no start-up or measurement allowance, no leak; gapped requests are dropped (no KoD), and overload
// control is off, so every unanswered request was gapped.
const BACKEND_CONFIG = `
[callgap]
minimum = 2
tolerance = 0
average = 2.5
burst = 1
fast = 0
leak = 0
[kod]
enabled = false
[overload]
enabled = false
`;

interface Backend {
  host: string;
  port: number;
  s: Ntpshield;
}
const backends: Backend[] = [];
let nginx: ChildProcess | undefined;
let nginxOut = "";
// A test that dies leaves no nginx behind (its workers end with their master).
process.once("exit", () => nginx?.kill("SIGKILL"));

/** deploy/nginx-ntp.conf with this test's addresses (and without the hash line for round robin). */
function nginxConfig(port: number, hash: boolean): string {
  let conf = readFileSync(join(REPO_ROOT, "deploy/nginx-ntp.conf"), "utf8");
  const swap = (from: RegExp, to: string) => {
    assert.match(conf, from, `deploy/nginx-ntp.conf has ${from}`);
    conf = conf.replace(from, to);
  };
  swap(/listen 123 udp reuseport;/, `listen ${NGINX_HOST}:${port} udp;`);
  swap(/^\s*server 10\.0\.0\.1\d:123 max_fails=0;\n/gm, "");
  swap(
    /(upstream ntp_fleet \{\n)/,
    `$1${backends.map((b) => `        server ${b.host}:${b.port} max_fails=0;\n`).join("")}`,
  );
  swap(/^error_log .*$/m, "error_log stderr warn;");
  swap(/^pid .*$/m, `pid ${join(dir, "nginx.pid")};`);
  swap(/^worker_processes auto;$/m, "worker_processes 1;");
  if (!hash) swap(/^\s*hash \$remote_addr consistent;.*\n/m, "");
  return conf;
}

async function startNginx(hash: boolean): Promise<number> {
  const binary = findTool("nginx");
  if (!existsSync(STREAM_MODULE))
    throw new PeerError("PEER_MISSING", `${STREAM_MODULE} missing: run scripts/install-peers.sh as root`);
  const port = await freeUdpPort(NGINX_HOST);
  const file = join(dir, `nginx-${hash ? "hash" : "rr"}.conf`);
  writeFileSync(file, nginxConfig(port, hash));
  nginxOut = "";
  // -e: the error log from the start (before the configuration is read) goes to stderr, not /var/log.
  const child = spawn(binary, ["-e", "stderr", "-p", dir, "-c", file, "-g", "daemon off;"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (nginxOut += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (nginxOut += d));
  nginx = child;
  // Ready when a request through it is answered.
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) throw new PeerError("PEER_FAILED", "nginx exited", nginxOut);
    if ((await ask(port, "127.51.0.1", 1, 0, 200)).served > 0) return port;
  }
  throw new PeerError("PEER_TIMEOUT", "nginx did not pass a request within 10 s", nginxOut);
}

async function stopNginx(): Promise<void> {
  const c = nginx;
  nginx = undefined;
  if (c === undefined || c.exitCode !== null) return;
  const gone = new Promise<void>((r) => c.once("exit", () => r()));
  c.kill("SIGTERM");
  await gone;
}

/** Sends `count` requests from `from`, `gapMs` apart, to nginx; counts time replies (stratum > 0). */
async function ask(
  port: number,
  from: string,
  count: number,
  gapMs: number,
  waitMs = 300,
): Promise<{ served: number }> {
  const sock = dgram.createSocket("udp4");
  let served = 0;
  sock.on("message", (m) => {
    if (m.length >= 48 && (m[0]! & 7) === 4 && m[1]! > 0) served++;
  });
  await new Promise<void>((r) => sock.bind(0, from, () => r()));
  for (let i = 0; i < count; i++) {
    sock.send(ntpRequest(i + 1), port, NGINX_HOST);
    if (gapMs > 0 && i < count - 1) await new Promise((r) => setTimeout(r, gapMs));
  }
  await new Promise((r) => setTimeout(r, waitMs));
  await new Promise<void>((r) => sock.close(() => r()));
  return { served };
}

/** Each backend's MRU list: client address -> packets it saw. */
async function mruLists(): Promise<Map<string, number>[]> {
  return Promise.all(
    backends.map(async (b) => {
      const body = (await (await fetch(`${b.s.httpUrl}/api/clients?limit=0`)).json()) as {
        clients: { address: string; count: number }[];
      };
      return new Map(body.clients.map((c) => [c.address, c.count]));
    }),
  );
}

interface SurveyJson {
  clients: number;
  sharedClients: number;
  balance: { servers: { clients: number; share: number }[]; maxOverMean: number; cv: number };
}

/** `ntpshield survey` over the three servers, as an operator runs it; JSON, or the text report. */
function survey(json: boolean): string {
  const urls = backends.map((b) => b.s.httpUrl!);
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, "src/cli/main.ts"), "survey", ...urls, ...(json ? ["--json"] : [])],
    { encoding: "utf8", timeout: 30_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** Which backends saw `address`, and how many packets each. */
function where(lists: Map<string, number>[], address: string): number[] {
  return lists.map((l) => l.get(address) ?? 0);
}

describe("a fleet behind nginx: source hash, source kept", () => {
  before(async () => {
    for (const host of BACKEND_HOSTS) {
      const port = await freeUdpPort(host);
      backends.push({
        host,
        port,
        s: await startNtpshield({ listen: [`${host}:${port}`], configToml: BACKEND_CONFIG }),
      });
    }
  });
  after(async () => {
    await stopNginx();
    for (const b of backends) await b.s.stop();
    await killAllPeers();
    rmSync(dir, { recursive: true, force: true });
  });

  test("hash: each client on one server, seen by its real address; a burster is gapped", async () => {
    const port = await startNginx(true);
    try {
      // The paper's mice: 40 clients, three requests each (some gapped: the MRU list counts them all).
      const mice = Array.from({ length: 40 }, (_, i) => `127.51.1.${i + 1}`);
      await Promise.all(mice.map((m) => ask(port, m, 3, 100)));
      const lists = await mruLists();
      const perBackend = [0, 0, 0];
      for (const m of mice) {
        const seen = where(lists, m);
        assert.equal(seen.filter((n) => n > 0).length, 1, `${m} on one server only: ${seen}`);
        assert.equal(Math.max(...seen), 3, `${m}: all three requests on that server`);
        perBackend[seen.findIndex((n) => n > 0)]!++;
      }
      assert.ok(
        perBackend.every((n) => n >= 4),
        `the clients spread over the three servers: ${perBackend}`,
      );
      for (const l of lists)
        assert.ok(!l.has(NGINX_HOST), "no server sees the balancer's address as a client");

      // A burster: a request a second for 12 s, all to the one server its address hashes to.
      const burst = await ask(port, "127.51.2.1", 12, 1000);
      const seen = where(await mruLists(), "127.51.2.1");
      assert.equal(seen.filter((n) => n > 0).length, 1, `the burster on one server: ${seen}`);
      assert.equal(Math.max(...seen), 12, `every request reached it: ${seen}`);
      assert.ok(burst.served <= 2, `the call-gap catches it: ${burst.served} of 12 answered`);

      // The survey over the fleet: every client once, none on two servers, and how evenly they spread.
      const s = JSON.parse(survey(true)) as SurveyJson;
      assert.equal(s.sharedClients, 0, "behind the hash no client meets two servers");
      assert.ok(s.clients >= 41, `40 mice and the burster: ${s.clients}`);
      assert.deepEqual(
        s.balance.servers.map((x) => x.clients),
        lists.map((l, i) => [...l.keys()].length + (i === seen.findIndex((n) => n > 0) ? 1 : 0)),
        "each server's clients, as its MRU list holds them",
      );
      assert.ok(s.balance.maxOverMean >= 1 && s.balance.maxOverMean < 2, `max/mean ${s.balance.maxOverMean}`);
      assert.ok(s.balance.cv < 0.5, `coefficient of variation ${s.balance.cv}`);
      assert.match(survey(false), /Balance over the servers[\s\S]*coefficient of variation/);
    } finally {
      await stopNginx();
    }
  });

  test("round robin (the same nginx without hash): a client is split, and the burster goes through", async () => {
    const port = await startNginx(false);
    try {
      const burst = await ask(port, "127.51.3.1", 12, 1000);
      const seen = where(await mruLists(), "127.51.3.1");
      assert.deepEqual(seen, [4, 4, 4], "spread evenly over every server, every request delivered");
      assert.ok(burst.served >= 10, `each server sees it every 3 s and answers: ${burst.served} of 12`);
      const s = JSON.parse(survey(true)) as SurveyJson;
      assert.ok(s.sharedClients >= 1, "the survey sees the burster on several servers (and counts it once)");
    } finally {
      await stopNginx();
    }
  });
});
