// The survey of paper §5 over three real servers: ntpshield x 3 on loopback (their HTTP endpoints serve
// /api/snapshot), a known traffic of mice and bursters spread round-robin over them, then
// `ntpshield survey URL URL URL --json`. The report must find exactly the bursters and the load share the
// test sent, with each burster counted once although its packets reached all three servers.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { freeUdpPort, killAllPeers, type Ntpshield, REPO_ROOT, startNtpshield } from "../helpers/peers.ts";

after(killAllPeers);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function socketOn(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  return s;
}

function request(tag: number): Buffer {
  const b = Buffer.alloc(48);
  b[0] = (4 << 3) | 3;
  b.writeUInt32BE(0xec000000, 40);
  b.writeUInt32BE(tag, 44);
  return b;
}

describe("the survey over three real servers", () => {
  const servers: Ntpshield[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test("finds the bursters and the load share of the traffic sent", { timeout: 60_000 }, async () => {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freeUdpPort();
      ports.push(port);
      servers.push(await startNtpshield({ listen: [`127.0.0.1:${port}`] }));
    }
    const urls = servers.map((s) => s.httpUrl);
    assert.ok(
      urls.every((u) => u !== undefined),
      "every server logs its HTTP address",
    );

    // 20 mice: one request each. 5 bursters: 10 requests each, 100 ms apart, round-robin over the servers.
    const mice = await Promise.all(Array.from({ length: 20 }, (_, i) => socketOn(`127.0.3.${i + 1}`)));
    for (const [i, s] of mice.entries()) s.send(request(i), ports[i % 3]!, "127.0.0.1");
    const bursters = await Promise.all(Array.from({ length: 5 }, (_, i) => socketOn(`127.0.4.${i + 1}`)));
    for (let k = 0; k < 10; k++) {
      for (const [i, s] of bursters.entries()) s.send(request(1000 + k), ports[(i + k) % 3]!, "127.0.0.1");
      await sleep(100);
    }
    await sleep(300);
    for (const s of [...mice, ...bursters]) s.close();

    const r = spawnSync(
      process.execPath,
      [join(REPO_ROOT, "src/cli/main.ts"), "survey", ...(urls as string[]), "--json"],
      { encoding: "utf8", timeout: 30_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      servers: unknown[];
      clients: number;
      sharedClients: number;
      packets: number;
      bursters: { clients: number; packets: number; loadShare: number; clientShare: number };
      curve: { clientsFor: { load: number; clients: number }[] };
      elephants: { address: string }[];
    };
    assert.equal(s.servers.length, 3);
    assert.equal(s.clients, 25, "20 mice and 5 bursters");
    assert.equal(s.sharedClients, 5, "each burster reached all three servers and is counted once");
    assert.equal(s.packets, 70);
    assert.equal(s.bursters.clients, 5);
    assert.equal(s.bursters.packets, 50);
    assert.ok(Math.abs(s.bursters.loadShare - 50 / 70) < 1e-9, `load share ${s.bursters.loadShare}`);
    assert.ok(Math.abs(s.bursters.clientShare - 0.2) < 1e-9);
    // "20% of the clients carry 71% of the load": the heaviest fifth carries 50 of 70 packets.
    const top = s.elephants.slice(0, 5).map((e) => e.address);
    assert.deepEqual(top.sort(), ["127.0.4.1", "127.0.4.2", "127.0.4.3", "127.0.4.4", "127.0.4.5"]);
  });
});
