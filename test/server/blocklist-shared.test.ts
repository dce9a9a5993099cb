// One blocklist for a fleet (docs/fleet.md): two ntpshield servers share their list through a real
// redis-server. A block made on one over HTTP is refused by the other within a second; with Redis gone
// both keep serving from their own copies and say so, blocks made meanwhile reach the other server once
// Redis is back (an empty Redis, as one without a disk restarts), and a removal travels as well.
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { RedisClient } from "../../src/server/blocklist/redis-client.ts";
import { RedisBlocklist } from "../../src/server/blocklist/redis-store.ts";
import { metric, ntpRequest, parsePrometheus, waitUntil } from "../helpers/monitor.ts";
import { freeUdpPort, killAllPeers, type Ntpshield, startNtpshield } from "../helpers/peers.ts";
import { type RedisPeer, startRedis } from "../helpers/redis.ts";

const dir = mkdtempSync(join(tmpdir(), "ntpshield-fleet-bl-"));
let redis: RedisPeer;
const servers: { name: string; ntp: string; port: number; s: Ntpshield }[] = [];

async function start(name: string, host: string): Promise<(typeof servers)[number]> {
  const port = await freeUdpPort(host);
  const s = await startNtpshield({
    listen: [`${host}:${port}`],
    configToml: [
      "[blocklist]",
      "enabled = true",
      `path = ${JSON.stringify(join(dir, `${name}.db`))}`,
      `redis = ${JSON.stringify(redis.url)}`,
      'redis-key = "fleet-test"',
    ].join("\n"),
  });
  const server = { name, ntp: host, port, s };
  servers.push(server);
  return server;
}

/** Whether `server` answers one request sent from `from` (a 127.51/16 address) within 400 ms. */
async function answers(server: { ntp: string; port: number }, from: string): Promise<boolean> {
  const sock = dgram.createSocket("udp4");
  let got = false;
  sock.on("message", () => (got = true));
  await new Promise<void>((r) => sock.bind(0, from, () => r()));
  sock.send(ntpRequest(7), server.port, server.ntp);
  await new Promise((r) => setTimeout(r, 400));
  await new Promise<void>((r) => sock.close(() => r()));
  return got;
}

async function listed(s: Ntpshield): Promise<string[]> {
  const body = (await (await fetch(`${s.httpUrl}/api/blocklist?limit=0`)).json()) as {
    entries: { address: string }[];
  };
  return body.entries.map((e) => e.address);
}

async function post(s: Ntpshield, address: string): Promise<void> {
  const r = await fetch(`${s.httpUrl}/api/blocklist`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ address, reason: `fleet test ${address}` }),
  });
  assert.equal(r.status, 201, await r.text());
}

async function sharedUp(s: Ntpshield): Promise<number | undefined> {
  const text = await (await fetch(`${s.httpUrl}/metrics`)).text();
  return metric(parsePrometheus(text), "ntpshield_blocklist_shared_up");
}

/** Milliseconds until `address` is on `s`'s list (polled every 20 ms), or throws after `ms`. */
async function timeUntilListed(s: Ntpshield, address: string, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if ((await listed(s)).includes(address)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${address} not on the list within ${ms} ms`);
}

describe("blocklist shared by two servers through Redis", () => {
  let a: (typeof servers)[number];
  let b: (typeof servers)[number];
  before(async () => {
    redis = await startRedis("127.0.50.20");
    a = await start("a", "127.0.50.21");
    b = await start("b", "127.0.50.22");
    await waitUntil(
      "both servers connected to Redis",
      async () => (await sharedUp(a.s)) === 1 && (await sharedUp(b.s)) === 1,
    );
  });
  after(async () => {
    for (const s of servers) await s.s.stop();
    await redis?.destroy();
    await killAllPeers();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a block made on A is refused by B within a second, with its reason; a removal on B reaches A", async () => {
    assert.equal(await answers(b, "127.51.0.5"), true, "B serves the address before the block");
    await post(a.s, "127.51.0.5");
    const ms = await timeUntilListed(b.s, "127.51.0.5", 1000);
    assert.ok(ms < 1000, `B had it after ${ms} ms`);
    assert.equal(await answers(b, "127.51.0.5"), false, "B refuses it");
    assert.equal(await answers(b, "127.51.0.6"), true, "and serves the others");
    assert.equal(await answers(a, "127.51.0.5"), false, "as A does");
    const body = (await (await fetch(`${b.s.httpUrl}/api/blocklist`)).json()) as {
      entries: { address: string; reason: string; source: string }[];
    };
    const e = body.entries.find((x) => x.address === "127.51.0.5");
    assert.equal(e?.reason, "fleet test 127.51.0.5");
    assert.equal(e?.source, "manual");

    const del = await fetch(`${b.s.httpUrl}/api/blocklist?address=127.51.0.5`, { method: "DELETE" });
    assert.equal(del.status, 200, await del.text());
    await waitUntil(
      "A to drop the entry removed on B",
      async () => !(await listed(a.s)).includes("127.51.0.5"),
      1000,
    );
    assert.equal(await answers(a, "127.51.0.5"), true, "A serves it again");
  });

  test("Redis gone: both keep serving from their copies and say so; blocks made meanwhile meet when it is back", async () => {
    await post(a.s, "127.51.1.1"); // before the outage: on both
    await timeUntilListed(b.s, "127.51.1.1", 1000);
    await redis.stop();
    await waitUntil("A to say the shared store is away", async () => (await sharedUp(a.s)) === 0, 10_000);
    await waitUntil("B to say the shared store is away", async () => (await sharedUp(b.s)) === 0, 10_000);
    assert.ok(
      a.s.records.some(
        (r) => r["level"] === "warn" && String(r["msg"]).includes("unreachable; serving from the local copy"),
      ),
    );
    await post(a.s, "127.51.2.2"); // made on A while Redis is away
    await post(b.s, "127.51.3.3"); // and on B
    assert.equal(await answers(a, "127.51.2.2"), false, "A blocks it at once");
    assert.equal(await answers(a, "127.51.0.9"), true, "A still serves");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await listed(b.s)).includes("127.51.2.2"), false, "B cannot know yet");

    await redis.start(); // empty: no disk
    await timeUntilListed(b.s, "127.51.2.2", 15_000);
    await timeUntilListed(a.s, "127.51.3.3", 15_000);
    assert.equal(await answers(b, "127.51.2.2"), false, "B refuses what A blocked while Redis was away");
    assert.equal(await answers(a, "127.51.3.3"), false, "and A what B blocked");
    await waitUntil("both caught up", async () => (await sharedUp(a.s)) === 1 && (await sharedUp(b.s)) === 1);
    assert.ok(
      b.s.records.some((r) => String(r["msg"]).includes("reachable again; caught up")),
      "B says it is back",
    );
    // The new Redis holds the whole list again, the entry from before the outage included.
    const c = new RedisClient(redis.url);
    try {
      await c.ready();
      const shared = await new RedisBlocklist(c, { key: "fleet-test" }).list();
      assert.deepEqual(shared.map((x) => x.address).sort(), ["127.51.1.1", "127.51.2.2", "127.51.3.3"]);
    } finally {
      c.close();
    }
  });
});
