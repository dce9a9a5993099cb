// The reverse-DNS access lists (paper §10, docs/defences-names.md) through the whole server: ntpshield with
// [names] rules and four worker threads, dnsmasq on loopback holding the PTR and A records of 127.0.0.2
// (good.mil) and 127.0.0.3 (host.bad.mil), and requests from those loopback sources, each from a new
// source port (so the kernel spreads them over the threads, as it does chrony's). Each address must be
// looked up exactly once, whichever threads its packets reach.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { after, test } from "node:test";
import { clientRequest } from "../helpers/ntp.ts";
import { freeUdpPort, killAllPeers, startDnsmasq, startNtpshield } from "../helpers/peers.ts";

after(() => killAllPeers());

/** One request from `from` (a new socket, so a new source port); the number of answers within `waitMs`. */
async function ask(from: string, port: number, waitMs = 150): Promise<number> {
  const sock = dgram.createSocket("udp4");
  let got = 0;
  sock.on("message", () => got++);
  await new Promise<void>((r) => sock.bind(0, from, () => r()));
  sock.send(clientRequest(), port, "127.0.0.1");
  await new Promise((r) => setTimeout(r, waitMs));
  await new Promise<void>((r) => sock.close(() => r()));
  return got;
}

test("name rules with four threads: one lookup per address, verdicts applied everywhere", async () => {
  const dns = await startDnsmasq({
    localDomains: ["in-addr.arpa", "mil"],
    hostRecords: [
      { name: "good.mil", addresses: ["127.0.0.2"] },
      { name: "host.bad.mil", addresses: ["127.0.0.3"] },
    ],
  });
  const port = await freeUdpPort();
  const server = await startNtpshield({
    listen: [`127.0.0.1:${port}`],
    threads: 4,
    configToml: [
      "[callgap]",
      "enabled = false",
      // Without `kod` a denied address is dropped in silence, so "no answer" is what a deny looks like here
      // (with it, the server sends a DENY kiss-o'-death: test/core/defences.test.ts).
      "[acl]",
      'default = ["limited"]',
      "[names]",
      'default = "deny"',
      'pending = "drop"',
      `resolver = ["${dns.server}"]`,
      "[[names.rule]]",
      'suffix = "bad.mil"',
      'action = "deny"',
      "[[names.rule]]",
      'suffix = ".mil"',
      'action = "allow"',
    ].join("\n"),
  });
  try {
    assert.equal(await ask("127.0.0.2", port), 0, "first request: lookup pending, dropped");
    for (let i = 0; i < 8; i++) assert.equal(await ask("127.0.0.2", port), 1, "good.mil is served");
    assert.equal(await ask("127.0.0.3", port), 0);
    for (let i = 0; i < 4; i++) assert.equal(await ask("127.0.0.3", port), 0, "host.bad.mil is denied");
    assert.equal(await ask("127.0.0.4", port), 0);
    assert.equal(await ask("127.0.0.4", port, 300), 0, "no PTR record: the default, deny");
    // The gate's counters are server-wide, on /metrics: three lookups, one per address, whatever thread.
    const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
    assert.match(metrics, /^ntpshield_name_rules_total\{event="queued"\} 3$/m, metrics);
    assert.match(metrics, /^ntpshield_name_rules_total\{event="denied"\} 5$/m, metrics);
    await dns.quiet();
    assert.deepEqual(
      dns
        .queries("PTR")
        .map((q) => q.name)
        .sort(),
      ["2.0.0.127.in-addr.arpa", "3.0.0.127.in-addr.arpa", "4.0.0.127.in-addr.arpa"],
    );
  } finally {
    await server.stop();
  }
  const stopped = server.records.find((r) => r["msg"] === "stopped") as
    | { counters: { byReason: Record<string, number> } }
    | undefined;
  assert.ok(stopped, "the server logged its counters");
  assert.equal(stopped.counters.byReason["served_client"], 8);
  assert.equal(stopped.counters.byReason["drop_name_deny"], 5);
  assert.equal(stopped.counters.byReason["drop_name_pending"], 3);
});
