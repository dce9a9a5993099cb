// A client is its prefix where addresses are cheap, with real sockets: a script that rotates its source over
// its IPv6 /64 (a new address for every request) is gapped and kissed as one client, and a second /64 is a
// second client. The test makes a network namespace of its own with 2001:db8:1:2::/64 and 2001:db8:1:3::/64
// addresses on its loopback (nodad: usable at once), runs the server and the sender inside it, reads the
// server's /api/clients there, and lets NTPsec's ntpq read the list (it must pass over the pfx.N tag). The
// namespace is deleted however the test ends. Needs root (ip netns); skipped without it.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { addressKey, formatAddressKey } from "../../src/defence/address-key.ts";
import {
  findTool,
  killAllPeers,
  type Ntpshield,
  PeerError,
  type PortSandbox,
  REPO_ROOT,
  run,
  startNtpshield,
} from "../helpers/peers.ts";

after(killAllPeers);

const NS = `ntpshield-prefix-${process.pid}-${randomBytes(3).toString("hex")}`;
const A = "2001:db8:1:2"; // the rotating script's /64
const B = "2001:db8:1:3"; // another client's /64
const FAST = 3; // [callgap] fast, the default: past it Rule 1 holds for requests 0.5 s apart

/** n distinct random addresses of the /64 `prefix`. */
function addressesIn(prefix: string, n: number): string[] {
  const out = new Set<string>();
  while (out.size < n) {
    const b = randomBytes(8);
    const groups = [0, 2, 4, 6].map((i) => b.readUInt16BE(i).toString(16));
    out.add(`${prefix}:${groups.join(":")}`);
  }
  return [...out];
}

/** `ip` with these arguments; throws with its output when it fails. */
function ip(args: string[], input?: string): void {
  const r = spawnSync(findTool("ip"), args, { encoding: "utf8", input, timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr || r.error?.message}`);
}

let made = false;
function deleteNamespace(): void {
  if (!made) return;
  made = false;
  spawnSync(findTool("ip"), ["netns", "del", NS], { timeout: 10_000 });
}
// Even when the runner is stopped between the hooks, the namespace does not outlive the process.
process.once("exit", deleteNamespace);

/** The namespace with `lo` up and the addresses on it; undefined (with why) when it cannot be made. */
function makeNamespace(addresses: string[]): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (ip netns)";
  try {
    ip(["netns", "add", NS]);
  } catch (e) {
    return `cannot make a network namespace: ${(e as Error).message}`;
  }
  made = true;
  ip(["-n", NS, "link", "set", "lo", "up"]);
  ip(["-n", NS, "-batch", "-"], addresses.map((a) => `addr add ${a}/128 dev lo nodad\n`).join(""));
  return undefined;
}

const sandbox: PortSandbox = {
  kind: "netns",
  host: "::1",
  wrap: (argv) => [findTool("ip"), "netns", "exec", NS, ...argv],
  close: async () => deleteNamespace(),
};

/**
 * Sends one mode-3 request from each source in turn, `intervalMs` apart, each from a socket bound to that
 * source inside the namespace, to [::1]:123; returns for each "time", "kod:CODE" or "none" (no answer
 * within 400 ms).
 */
async function send(sources: string[], intervalMs: number): Promise<string[]> {
  const script = `
const dgram = require("node:dgram");
const sources = ${JSON.stringify(sources)};
(async () => {
  const out = [];
  const start = Date.now();
  for (let i = 0; i < sources.length; i++) {
    const at = start + i * ${intervalMs};
    if (Date.now() < at) await new Promise((r) => setTimeout(r, at - Date.now()));
    const s = dgram.createSocket("udp6");
    await new Promise((r) => s.bind(0, sources[i], r));
    const got = new Promise((r) => {
      s.on("message", (m) => r(m));
      setTimeout(() => r(null), 400);
    });
    const b = Buffer.alloc(48);
    b[0] = 0x23;
    b.writeUInt32BE(0xec000000, 40);
    b.writeUInt32BE(i, 44);
    s.send(b, 123, "::1");
    const m = await got;
    s.close();
    out.push(m === null ? "none" : m[1] === 0 ? "kod:" + m.subarray(12, 16).toString("latin1") : "time");
  }
  process.stdout.write(JSON.stringify(out) + "\\n");
})();`;
  const r = await run(sandbox.wrap([process.execPath, "-e", script]), 60_000);
  assert.equal(r.code, 0, r.output);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as string[];
}

/** GET `path` of the server's monitoring endpoint, from inside the namespace. */
async function getJson<T>(url: string): Promise<T> {
  const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t));`;
  const r = await run(sandbox.wrap([process.execPath, "-e", script]), 15_000);
  assert.equal(r.code, 0, r.output);
  return JSON.parse(r.stdout) as T;
}

function ntpqPath(): string {
  const path = join(REPO_ROOT, ".peers", "bin", "ntpq");
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new PeerError(
      "PEER_MISSING",
      `${path} is missing: run scripts/install-peers.sh as root (docs/testing.md)`,
    );
  }
}

/** The counters the server logs when it stops. */
function stoppedCounters(s: Ntpshield): Record<string, number> {
  const rec = s.records.find((r) => r["msg"] === "stopped");
  assert.ok(rec, `no "stopped" record in:\n${s.logs.join("\n")}`);
  return (rec["counters"] as { byReason: Record<string, number> }).byReason;
}

const count = (xs: string[], x: string) => xs.filter((y) => y === x).length;

interface ClientRow {
  address: string;
  lastAddress: string;
  prefixLength: number;
  count: number;
  drop: number;
}

describe("IPv6 clients known by their /64 (real sockets, a network namespace)", () => {
  let server: Ntpshield | undefined;
  after(async () => {
    await server?.stop();
    deleteNamespace();
  });

  test("40 requests 0.5 s apart from 40 addresses of one /64 are one client; a second /64 is another", {
    timeout: 150_000,
  }, async (t) => {
    const a = addressesIn(A, 44);
    const b = addressesIn(B, 4);
    const why = makeNamespace([...a, ...b]);
    if (why !== undefined) {
      t.skip(why);
      return;
    }
    server = await startNtpshield({ listen: ["[::1]:123"], sandbox, configToml: "[callgap]\nleak = 0\n" });
    assert.ok(server.httpUrl, "the monitoring endpoint is on");

    // The rotating script: every request from a new address of A's /64.
    const first = await send(a.slice(0, 40), 500);
    const answered = count(first, "time");
    // Gapped as one client: at most the fast allowance answered ([callgap] fast), the rest kissed (RATE, at
    // most one per 5 s) or dropped.
    assert.ok(answered >= 1 && answered <= FAST, first.join(" "));
    assert.deepEqual(first.slice(0, answered), new Array(answered).fill("time"), first.join(" "));
    const kods = count(first, "kod:RATE");
    assert.ok(kods >= 2 && kods <= 5, first.join(" "));
    assert.equal(count(first, "none"), 40 - answered - kods, first.join(" "));

    // Two /64s are two clients: B's requests, between four more of A's, are answered from B's own burst.
    const mixed = await send([a[40]!, b[0]!, a[41]!, b[1]!, a[42]!, b[2]!, a[43]!, b[3]!], 250);
    const fromA = mixed.filter((_, i) => i % 2 === 0);
    const fromB = mixed.filter((_, i) => i % 2 === 1);
    assert.equal(count(fromA, "time"), 0, mixed.join(" "));
    assert.equal(fromB[0], "time", mixed.join(" "));
    assert.ok(count(fromB, "time") >= 2, mixed.join(" "));

    // The monitoring endpoint shows two clients, each a prefix with its last address.
    const { clients } = await getJson<{ clients: ClientRow[] }>(`${server.httpUrl}/api/clients?sort=addr`);
    const canonical = (address: string) => formatAddressKey(addressKey(address)!);
    assert.deepEqual(
      clients.map((c) => [c.address, c.prefixLength, c.count, c.lastAddress]),
      [
        [`${A}::/64`, 64, 44, canonical(a[43]!)],
        [`${B}::/64`, 64, 4, canonical(b[3]!)],
      ],
    );

    // NTPsec's ntpq reads the list: a row per client, the last address as its remote address.
    const r = await run(sandbox.wrap([ntpqPath(), "-n", "-c", "mrulist", "::1"]), 30_000);
    assert.equal(r.signal, null, r.output);
    const rows = r.output.split("\n").filter((l) => /2001:db8:1:[23]:/.test(l));
    assert.equal(rows.length, 2, r.output);
    const rowA = rows.find((l) => l.includes(`${A}:`))!;
    const rowB = rows.find((l) => l.includes(`${B}:`))!;
    assert.match(rowA, /\s44\s/, r.output);
    assert.match(rowB, /\s4\s/, r.output);

    await server.stop();
    const c = stoppedCounters(server);
    server = undefined;
    assert.equal(c["served_client"], answered + count(fromB, "time"), JSON.stringify(c));
    // B's fourth request, 0.5 s after its third, is past its fast allowance: kissed like A's.
    assert.equal(
      c["kiss_rate"],
      kods + count(fromA, "kod:RATE") + count(fromB, "kod:RATE"),
      JSON.stringify(c),
    );
  });
});
